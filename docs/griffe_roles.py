"""Griffe extension for the docs build: renders the reST bits of fluxtrain's docstrings.

The docstrings are Google style with two reST habits that Markdown does not know:

- cross-reference roles, ``:class:`~fluxtrain.Scheduler```, ``:meth:`Learner.state_dict
  <fluxtrain.Learner.state_dict>```, ``:func:`lr_find```: they become links to the API
  reference where the target is documented there, inline code otherwise (never a warning);
- a paragraph ending in ``::`` before an indented literal block: the ``::`` becomes ``:``.

Used from ``mkdocs.yml`` (``plugins.mkdocstrings.handlers.python.options.extensions``).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj):`(?P<body>[^`]+)`")
EXPLICIT = re.compile(r"^(?P<title>.+?)\s*<(?P<target>[^<>]+)>$")
LITERAL_MARKER = re.compile(r"(\S)\s*::[ \t]*\n(?=[ \t]*\n[ \t]+\S)")


def _canonical(collection: Any, path: str) -> str | None:
    """The path where ``path``'s object is defined (through imports), or None if unknown."""
    try:
        return collection[path].canonical_path
    except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None


def _resolve(obj: griffe.Object, collection: Any, target: str) -> str | None:
    """The canonical path of ``target`` as written in ``obj``'s docstring, or None."""
    candidates = [target]
    scope: griffe.Object | None = obj
    while scope is not None:
        candidates.append(f"{scope.path}.{target}")
        scope = scope.parent
    for candidate in candidates:
        if candidate.split(".")[0] == obj.package.name:
            if (path := _canonical(collection, candidate)) is not None:
                return path
    return None


def _replace_roles(obj: griffe.Object, collection: Any, text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        body = match["body"].strip()
        explicit = EXPLICIT.match(body)
        if explicit:
            title, target = explicit["title"], explicit["target"]
        else:
            target = body.lstrip("~")
            title = target.rsplit(".", 1)[-1] if body.startswith("~") else target
        path = _resolve(obj, collection, target.lstrip("~"))
        code = f"<code>{title}</code>"
        if path is None:
            return f"`{title}`"
        return f'<autoref identifier="{path}" optional>{code}</autoref>'

    return ROLE.sub(replace, text)


class ReSTRoles(griffe.Extension):
    """Rewrites reST roles and literal-block markers in every docstring of the package."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        collection = loader.modules_collection
        stack: list[griffe.Object] = [pkg]
        while stack:
            obj = stack.pop()
            if obj.docstring is not None:
                text = LITERAL_MARKER.sub(r"\1:\n", obj.docstring.value)
                obj.docstring.value = _replace_roles(obj, collection, text)
            stack.extend(m for m in obj.members.values() if isinstance(m, griffe.Object))
