import io
import json
import pickle
import sys
from pathlib import Path

import pytest

from fluxtrain.callbacks.progress import ProgressPrinter, bar_class

pytest.importorskip("matplotlib")
from fluxtrain.plots import new_figure, plot_schedule  # noqa: E402

NOTEBOOK = Path(__file__).parents[2] / "examples" / "notebook.ipynb"
PNG = b"\x89PNG\r\n\x1a\n"


def test_figures_show_themselves_as_png_and_pickle():
    assert plot_schedule(0.1, 2, 3)._repr_png_()[:8] == PNG
    figure = new_figure(figsize=(2.0, 1.0))
    figure.add_subplot().plot([0, 1], [1, 0])
    copy = pickle.loads(pickle.dumps(figure))
    assert type(copy) is type(figure) and type(figure).__name__ == "PlotFigure"
    assert copy._repr_png_()[:8] == PNG


def test_outside_a_notebook_progress_bars_are_text_bars():
    out = io.StringIO()
    printer = ProgressPrinter(file=out)
    assert bar_class().__module__ == "tqdm.std" and printer._bar_class is bar_class()


def test_the_example_notebook_runs_and_shows_every_figure(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbconvert = pytest.importorskip("nbconvert.preprocessors")
    pytest.importorskip("ipykernel")
    # a kernel of this interpreter, whatever kernels the machine has installed
    spec = tmp_path / "kernels" / "fluxtrain-test"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel = {"argv": argv, "display_name": "fluxtrain test", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    executor = nbconvert.ExecutePreprocessor(timeout=300, kernel_name="fluxtrain-test")
    executor.preprocess(notebook, {"metadata": {"path": str(NOTEBOOK.parent)}})
    outputs = {
        cell.metadata["tags"][0]: cell.outputs
        for cell in notebook.cells
        if cell.cell_type == "code" and cell.metadata.get("tags")
    }
    assert list(outputs) == ["setup", "lr_find", "schedule", "live", "history"]
    for tag in ["lr_find", "schedule", "live", "history"]:
        pngs = [o for o in outputs[tag] if "image/png" in o.get("data", {})]
        assert len(pngs) == 1, (tag, outputs[tag])
        assert pngs[0]["output_type"] == ("display_data" if tag == "live" else "execute_result")
    printed = "".join(o.get("text", "") for o in outputs["live"] if o["output_type"] == "stream")
    assert "FitResult(epochs_completed=3" in printed
    errors = [
        o for cell in notebook.cells for o in cell.get("outputs", ()) if o.output_type == "error"
    ]
    assert errors == []
    warnings = [
        o["text"]
        for cell in notebook.cells  # the imports included
        for o in cell.get("outputs", ())
        if o["output_type"] == "stream" and "Warning" in o["text"]
    ]
    assert warnings == []
