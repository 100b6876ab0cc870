"""Manifest errors that point at the exact place to fix: file, document and field.

A person editing YAML needs ``examples/bad.yaml: document 2 (LLMProvider default/openai):
spec.weight: Input should be greater than or equal to 0``, not a pydantic traceback. One
``ManifestError`` carries every problem found in a load, so a single run reports them all.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with one document."""

    file: str
    document: int | None
    """1-based index of the YAML document in ``file``; None for a file-level problem."""
    message: str
    field: str | None = None
    """Dotted path inside the document (``spec.healthCheck.timeoutSeconds``), if known."""
    kind: str | None = None
    namespace: str | None = None
    name: str | None = None

    @property
    def resource(self) -> str | None:
        """``LLMProvider default/openai``, as far as the document says."""
        if not self.kind:
            return None
        if self.name:
            return f"{self.kind} {self.namespace or 'default'}/{self.name}"
        return self.kind

    def __str__(self) -> str:
        where = self.file
        if self.document is not None:
            where += f": document {self.document}"
            if self.resource:
                where += f" ({self.resource})"
        if self.field:
            return f"{where}: {self.field}: {self.message}"
        return f"{where}: {self.message}"


class ManifestError(ValueError):
    """The manifests cannot be loaded; ``problems`` lists every reason, each with its place."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: Sequence[Problem] = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems) or "invalid manifests")

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems) or "invalid manifests"


def field_path(loc: Sequence[int | str]) -> str:
    """A pydantic error location as users write it: ``spec.capabilities[0]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
