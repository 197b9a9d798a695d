"""Building the public zoo from its manifest (issue: the zoo, trained where we always have hardware).

``zoo.toml`` declares the entries; :func:`build_release` trains what a target
registry lacks for this machine's recipe, resumes what was cut off, and
publishes; :mod:`reszoo.release.report` draws the figures and the table.
"""

from reszoo.release.build import ReleaseReport, build_release, parse_duration, ship_from
from reszoo.release.manifest import Manifest, read_manifest

__all__ = ["Manifest", "ReleaseReport", "build_release", "parse_duration", "read_manifest", "ship_from"]
