"""The assertions a patch's `check()` makes about a library's internals.

Each raises `InternalsChanged` naming the patch, the internal and the installed version of
the library, so an upgrade that breaks a patch stops the server at startup instead of
silently undoing (or corrupting) what the patch does.
"""

import ast
import inspect
import platform
import textwrap
from collections.abc import Callable, Iterable
from importlib import metadata
from typing import Any

from django.core.exceptions import ImproperlyConfigured


class InternalsChanged(ImproperlyConfigured):
    """A library no longer has an internal that one of chatsite's patches relies on."""


def _version(distribution: str) -> str:
    if distribution == "Python":
        return platform.python_version()
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def fail(patch: str, distribution: str, internal: str, problem: str) -> InternalsChanged:
    """The error for `internal` of `distribution`, which `patch` relies on."""
    return InternalsChanged(
        f"chatsite patch {patch!r} (chatsite/patches/) relies on {internal}, which {problem} "
        f"in {distribution} {_version(distribution)}. Review the patch against this version, "
        "or install the version pinned in requirements.txt."
    )


def require_attrs(
    patch: str, distribution: str, owner: Any, names: Iterable[str], *, label: str
) -> None:
    """`owner` (a class, a module or an instance, shown as `label`) has each attribute."""
    for name in names:
        if not hasattr(owner, name):
            raise fail(patch, distribution, f"{label}.{name}", "does not exist")


def require_params(
    patch: str, distribution: str, func: Callable[..., Any] | None, params: list[str], *, label: str
) -> None:
    """`func` exists and takes exactly `params`, in that order."""
    if not callable(func):
        raise fail(patch, distribution, label, "does not exist")
    found = list(inspect.signature(func).parameters)
    if found != params:
        raise fail(
            patch,
            distribution,
            f"{label}({', '.join(params)})",
            f"takes ({', '.join(found)}) instead",
        )


def require_source(
    patch: str,
    distribution: str,
    func: Callable[..., Any] | None,
    snippets: Iterable[str],
    *,
    label: str,
) -> None:
    """The source of `func` still contains each snippet: the behaviour a patch builds on
    (a call it replaces, a field it reads) is still where the patch expects it."""
    if not callable(func):
        raise fail(patch, distribution, label, "does not exist")
    try:
        source = inspect.getsource(func)
    except (OSError, TypeError):
        raise fail(patch, distribution, label, "has no Python source") from None
    for snippet in snippets:
        if snippet not in source:
            raise fail(patch, distribution, f"{label} doing `{snippet}`", "no longer does so")


def require_calls(
    patch: str,
    distribution: str,
    func: Callable[..., Any] | None,
    calls: set[str],
    *,
    label: str,
) -> None:
    """`func` calls exactly these names (functions or methods, by their last name): for an
    override that replaces `func` and must still do everything it did but what it skips."""
    if not callable(func):
        raise fail(patch, distribution, label, "does not exist")
    tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    found = {
        node.func.id if isinstance(node.func, ast.Name) else node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name | ast.Attribute)
    }
    if found != calls:
        changes = [f"+{name}" for name in sorted(found - calls)]
        changes += [f"-{name}" for name in sorted(calls - found)]
        raise fail(
            patch,
            distribution,
            f"{label} calling only {', '.join(sorted(calls))}",
            f"changed ({' '.join(changes)})",
        )
