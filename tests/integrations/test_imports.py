import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_importing_fluxtrain_and_its_integrations_imports_no_optional_package():
    code = (
        "import sys, fluxtrain, fluxtrain.integrations\n"
        "print(sorted(m for m in ('mlflow', 'wandb', 'optuna', 'IPython', 'matplotlib') "
        "if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "[]\n"
