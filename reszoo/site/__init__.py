"""The zoo as a static HTML site: an index of entries, one page per entry, the
accuracy-latency charts (build.py writes it; pages.py, chart.py and assets.py
are its parts). ``reszoo site`` and ``reszoo release`` write it.
"""

from reszoo.site.build import write_site

__all__ = ["write_site"]
