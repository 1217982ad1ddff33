"""The fetchmail releases the patch table must cover, and helpers shared by these tests."""

from __future__ import annotations

from harness.source.versions import Version

# Every release from 6.3.0 on (the upstream tags RELEASE_6-3-0 ... RELEASE_6-4-33 and 6.5.0.beta7).
RELEASES: tuple[Version, ...] = (
    *(Version(6, 3, n) for n in range(27)),
    *(Version(6, 4, n) for n in range(34)),
    Version.parse("6.5.0.beta7"),
)


# Pre-releases the table covers; other betas/snapshots/dev tags are not releases users run.
PRERELEASE_TAGS = ("6.5.0.beta7",)


def upstream_release(tag: str) -> Version | None:
    """The release a tag names if the table must cover it, else None: every RELEASE_6-x-y
    tag from 6.3.0 on, plus the pre-releases listed above."""
    if not (tag.startswith("RELEASE_") or tag in PRERELEASE_TAGS):
        return None
    version = Version.from_tag(tag)
    if version is None or version < Version(6, 3, 0):
        return None
    return version
