"""The entries a journal line is made of, bounded: a line for 20,000 time entries names them by count,
a sample and a digest, so the journal stays small and an auditor can still check it against the PSA."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field

# Ids a line names outright; beyond this the count and the digest stand for the rest.
SAMPLE_SIZE = 20


def source_id(kind: str, item_id: str) -> str:
    """A source's id with its kind, so time entry 7 and invoice 7 never read alike."""
    return f"{kind}:{item_id}"


class SourceRefs(BaseModel):
    """`count` distinct sources; `sample` the first of them in sorted order; `digest` the SHA-256 of all of
    them, sorted, one a line: the same sources always give the same digest."""

    model_config = ConfigDict(frozen=True)

    count: int = Field(ge=0)
    sample: tuple[str, ...] = ()
    digest: str = ""

    @classmethod
    def of(cls, ids: Iterable[str]) -> SourceRefs:
        unique = sorted(set(ids))
        if not unique:
            return cls(count=0)
        digest = hashlib.sha256("\n".join(unique).encode()).hexdigest()
        return cls(count=len(unique), sample=tuple(unique[:SAMPLE_SIZE]), digest=digest)

    @property
    def complete(self) -> bool:
        """Whether `sample` names every source."""
        return len(self.sample) == self.count

    def combined(self, other: SourceRefs) -> SourceRefs:
        """Both sets, when both are complete; else their counts summed and a digest of the two digests (the
        sources then have to be listed again from the PSA to check it)."""
        if self.complete and other.complete:
            return SourceRefs.of((*self.sample, *other.sample))
        if other.count == 0:
            return self
        if self.count == 0:
            return other
        digest = hashlib.sha256(f"{self.digest}\n{other.digest}".encode()).hexdigest()
        sample = tuple(sorted(set(self.sample) | set(other.sample))[:SAMPLE_SIZE])
        return SourceRefs(count=self.count + other.count, sample=sample, digest=digest)

    def text(self, limit: int = 1000) -> str:
        """The sources in at most `limit` characters, as a posted journal line names them: as many ids as
        fit, then how many more and the digest of them all."""
        if self.count == 0:
            return "none"
        shown = list(self.sample)
        while shown:
            rest = self.count - len(shown)
            written = ",".join(shown) + (f" +{rest} more (sha256 {self.digest})" if rest else "")
            if len(written) <= limit:
                return written
            shown.pop()
        return f"{self.count} sources (sha256 {self.digest})"[:limit]
