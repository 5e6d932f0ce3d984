"""/metrics rendered fast: byte for byte what prometheus_client writes for the same registry, in
the Prometheus text format and in OpenMetrics, at a fraction of its cost.

prometheus_client builds a Sample tuple and a label dict for every sample at every scrape and
formats each one from scratch (9-13 us a sample, benchmarks/RESULTS.md); a monitor of 1,500
(network, tier, workload) series writes ~200,000 samples a scrape: 1.7-2.7 s. `Exposition` walks
the labelled Counter, Gauge, Histogram and Summary children itself instead and keeps, per child
and format:
- the text around its values (names, sorted and escaped labels, `le` bounds), built once;
- the text its values gave at the last scrape, with their change mark: the value of a counter
  or gauge, the sum of a histogram or summary (every update adds to it). Each update makes a
  new float object, so a child whose mark is the very object it was is not formatted again;
  any update shows as a new object, so the output is never stale.
Everything else (custom collectors such as the SLA figures, process metrics, unlabelled
metrics, exemplars, gauges reading a function) goes through prometheus_client's own encoder,
one collector at a time, so the whole body stays identical to `generate_latest` (tests compare
them, tests/test_exposition.py). A custom collector with an `exposition_token()` method (the
SLA figures: thousands of samples, which change only when the figures are re-evaluated) is
encoded again only when that token changes, its plain gauge families written here sample by
sample, in slices like the rest.

The fast path reads prometheus_client's private internals (a registry's collectors, a metric's
children and their value objects, the OpenMetrics escaping helpers), so it runs only on the
client versions it is tested on, `TESTED_VERSIONS` (pyproject.toml pins the same range; CI runs
tests/test_exposition.py at both ends of it). On any other version, on a multiprocess registry,
or when anything in the fast path raises, the whole registry is handed to prometheus_client's
own encoder, which is always correct, only slower.
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import importlib.metadata
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from itertools import accumulate, compress
from operator import attrgetter, is_, is_not
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary
from prometheus_client import exposition as text_exposition
from prometheus_client import metrics as client_metrics
from prometheus_client import values as client_values
from prometheus_client.openmetrics import exposition as om_exposition
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

Encoder = Callable[[CollectorRegistry], bytes]

_TEXT, _OPENMETRICS = "text", "openmetrics"
SLICE_S = 0.001  # work between two hand-backs to the event loop, in seconds, at the least
# ... or a third of the time the loop took to come back, up to SLICE_MAX_S: on a busy loop a
# scrape gets up to a quarter of it, and a probe's timestamp waits at most SLICE_MAX_S for it
SHARE_OF_AWAY = 1 / 3
SLICE_MAX_S = 0.005
_MARKS_AT_ONCE = 2048  # children whose change marks are read between two looks at the clock
_EOF = b"# EOF\n"
_value = attrgetter("_value")
_exemplar = attrgetter("_exemplar")
# prometheus_client's functions used here (partly untyped upstream; private ones included:
# the tests compare every byte with its encoders, so a change there shows at once)
_go_float: Callable[[float], str] = floatToGoString
_om: Any = om_exposition
# The prometheus_client releases the fast path is tested on, [lowest, first untested):
# pyproject.toml's range for prometheus-client is the same (tests/test_exposition.py checks).
TESTED_VERSIONS = ((0, 23, 1), (0, 27))
# The escaping prometheus_client applies when a scrape asks for none (its UNDERSCORES).
DEFAULT_ESCAPING = "underscores"


def _release(version: str) -> tuple[int, ...]:
    """'0.23.1' -> (0, 23, 1); '0.27.0rc1' -> (0, 27, 0): the leading release numbers."""
    match = re.match(r"\d+(?:\.\d+)*", version)
    return tuple(map(int, match.group().split("."))) if match else ()


def client_version() -> tuple[int, ...]:
    """The installed prometheus_client's release numbers, () if unknown."""
    try:
        return _release(importlib.metadata.version("prometheus-client"))
    except importlib.metadata.PackageNotFoundError:
        return ()


def fast_path_tested(version: tuple[int, ...] | None = None) -> bool:
    """Whether the fast path may read prometheus_client's internals: a tested release with
    every private name it reads present, and plain in-process values (not multiprocess
    mmap files)."""
    lowest, above = TESTED_VERSIONS
    if not lowest <= (client_version() if version is None else version) < above:
        return False
    names = ("UNDERSCORES", "ALLOWUTF8", "_escape", "_is_legacy_labelname_rune",
             "_is_valid_legacy_metric_name", "escape_metric_name", "escape_label_name")
    return all(hasattr(om_exposition, n) for n in names) \
        and hasattr(client_metrics, "_use_created") \
        and getattr(client_values, "ValueClass", None) is getattr(client_values, "MutexValue", 0)


def _go_bytes(v: float) -> bytes:
    """floatToGoString, encoded, short-cut for the common case: a finite float below 1e6 prints
    as Python's repr in both (Go switches to exponents from 1e6 on; inf and NaN are named)."""
    if v.__class__ is float and -math.inf < v < 1e6:
        return repr(v).encode()
    return _go_float(v).encode()


class _Printed(dict[float, bytes]):
    """float -> its text, filled on demand: a histogram's cumulative counts repeat (small
    whole numbers), and a dict lookup is cheaper than formatting. Never holds -0.0 or NaN (a
    count is a sum of ones from 0.0), which a dict would confuse with 0.0 or miss."""

    def __missing__(self, v: float) -> bytes:
        text = self[v] = _go_bytes(v)
        return text


_COUNTS = _Printed()


@dataclass(frozen=True, slots=True)
class Format:
    """What a scrape asked for: the text format or OpenMetrics, and the name escaping."""

    kind: str
    escaping: str = DEFAULT_ESCAPING
    version: str = "1.0.0"

    @property
    def openmetrics(self) -> bool:
        return self.kind == _OPENMETRICS


def negotiate(accept: str) -> tuple[Format | None, Encoder, str]:
    """prometheus_client's content negotiation (`choose_encoder`): the format it chose (None if
    not one this module renders), its own encoder for it, and the Content-Type."""
    encoder, content_type = text_exposition.choose_encoder(accept)
    if encoder is text_exposition.generate_latest:
        return Format(_TEXT), encoder, content_type
    if isinstance(encoder, partial) and not encoder.args:
        kw = encoder.keywords
        escaping = kw.get("escaping", DEFAULT_ESCAPING)
        if encoder.func is text_exposition.generate_latest and set(kw) <= {"escaping"}:
            return Format(_TEXT, escaping), encoder, content_type
        if encoder.func is om_exposition.generate_latest and set(kw) <= {"escaping", "version"}:
            return Format(_OPENMETRICS, escaping, kw.get("version", "1.0.0")), encoder, \
                content_type
    return None, encoder, content_type


class _One:
    """A registry of one collector's metrics, for prometheus_client's encoders."""

    def __init__(self, metrics: Iterable[Any]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Any]:
        return self.metrics


class _Unusual(Exception):
    """A family this renderer leaves to prometheus_client (exemplars, odd names)."""


# The wrapper types whose labelled children are rendered here, by their type name.
_KINDS: dict[type, str] = {Counter: "counter", Gauge: "gauge", Histogram: "histogram",
                           Summary: "summary"}


class Exposition:
    """Renders one registry on every scrape. `render` from any thread (one at a time: they share
    the caches); `render_parts` (or `render_async`) on the event loop, which it hands back
    after every slice of work. Do not mix the two on one Exposition at the same time."""

    def __init__(self, registry: CollectorRegistry, slice_s: float = SLICE_S,
                 share_of_away: float = SHARE_OF_AWAY) -> None:
        self.registry = registry
        # how long render_parts may hold the loop between hand-backs: slice_s, or this share
        # of the time the loop was away, if longer
        self.slice_s, self.share_of_away = slice_s, share_of_away
        self._lock = threading.Lock()
        self._alock: asyncio.Lock | None = None
        self._families: dict[tuple[Format, Collector], _Family] = {}
        self._kept: dict[tuple[Format, Collector], tuple[object, bytes]] = {}
        self.fast = fast_path_tested()

    def render(self, fmt: Format) -> bytes:
        if not self.fast:
            return self.stock(fmt)
        with self._lock:
            out: list[bytes] = []
            try:
                for _ in self._steps(fmt, out, _Slice(math.inf)):
                    pass
            except Exception:  # whatever went wrong reading its internals: its own encoder
                self.fast = False
                return self.stock(fmt)
            return b"".join(out)

    async def render_async(self, fmt: Format) -> bytes:
        """The same bytes as `render`, rendered on the event loop (see `render_parts`)."""
        return b"".join(await self.render_parts(fmt))

    async def render_parts(self, fmt: Format) -> list[bytes]:
        """The same bytes as `render`, in parts (to be written as they are, never joined into
        one body), rendered on the event loop, which it hands back after every `slice_s` of work.

        Why not a thread: a thread formatting for 50-300 ms holds the interpreter lock in
        5 ms turns, and the event loop, which gives the lock up at every socket call, waits a
        turn after each one: with hundreds of streams in flight that stretched one loop
        iteration to half a second and every stream's TTFT with it (benchmarks/RESULTS.md).
        Here the loop is held one slice at a time, and the clock decides the slices, not a
        count of children (a histogram child costs ten times a counter's): `slice_s`, or a
        third of the time the loop was away if longer, up to SLICE_MAX_S. On a loop so busy
        that each turn takes 20 ms, millisecond slices would stretch a 0.5 s render to 10 s,
        past Prometheus' scrape timeout; 5 ms slices end it in 2.5 s, and no probe's
        timestamp waits longer than one slice for it."""
        if not self.fast:
            return [self.stock(fmt)]
        if self._alock is None:
            self._alock = asyncio.Lock()
        async with self._alock:
            out: list[bytes] = []
            budget = _Slice(self.slice_s)
            try:
                for _ in self._steps(fmt, out, budget):
                    left = time.perf_counter()
                    await asyncio.sleep(0)
                    away = time.perf_counter() - left
                    budget.restart(max(self.slice_s, min(away * self.share_of_away, SLICE_MAX_S)))
            except Exception:
                self.fast = False
                return [self.stock(fmt)]
            return out

    def stock(self, fmt: Format) -> bytes:
        """prometheus_client's own rendering of the whole registry."""
        return stock_encoder(fmt)(self.registry)

    def _steps(self, fmt: Format, out: list[bytes], budget: _Slice) -> Iterator[None]:
        """Render into `out`, yielding whenever the slice `budget` is spent."""
        registry: Any = self.registry
        with registry._lock:
            collectors = list(registry._collector_to_names)
            target_info = registry._target_info_metric() if registry._target_info else None
        if target_info is not None:
            out.append(_stock_part([target_info], fmt))
        created = bool(client_metrics._use_created)
        seen: set[tuple[Format, Collector]] = set()
        collector: Any
        for collector in collectors:
            kind = _KINDS.get(type(collector))
            if kind is not None and collector._is_parent():
                key = (fmt, collector)
                seen.add(key)
                family = self._families.get(key)
                if family is None or family.use_created != created:
                    family = self._families[key] = _Family(collector, kind, fmt, created)
                try:
                    yield from family.render(out, budget)
                    if budget.spent():
                        yield
                    continue
                except _Unusual:
                    del self._families[key]
            token_of = getattr(collector, "exposition_token", None)
            if callable(token_of):  # its text kept while its token stays the same
                key = (fmt, collector)
                seen.add(key)
                token = token_of()
                kept = self._kept.get(key)
                if kept is None or kept[0] != token:
                    parts: list[bytes] = []
                    for metric in collector.collect():  # a family at a time
                        yield from _gauge_family(metric, fmt, parts, budget)
                        if budget.spent():
                            yield
                    kept = self._kept[key] = (token, b"".join(parts))
                out.append(kept[1])
            else:
                out.append(_stock_part(collector.collect(), fmt))
            if budget.spent():
                yield
        for key in [k for k in self._families if k[0] == fmt and k not in seen]:
            del self._families[key]  # collectors unregistered since
        for key in [k for k in self._kept if k[0] == fmt and k not in seen]:
            del self._kept[key]
        if fmt.openmetrics:
            out.append(_EOF)


class _Slice:
    """How long rendering may go on before it hands the event loop back."""

    __slots__ = ("ends",)

    def __init__(self, length: float) -> None:
        self.ends = time.perf_counter() + length

    def spent(self) -> bool:
        return time.perf_counter() >= self.ends

    def restart(self, length: float) -> None:
        self.ends = time.perf_counter() + length


def _gauge_family(metric: Any, fmt: Format, out: list[bytes], budget: _Slice
                  ) -> Iterator[None]:
    """A collector's gauge family (plain samples: no timestamps, no exemplars), written here
    a sample at a time, yielding whenever `budget` is spent (prometheus_client's encoder takes
    ~10 us a sample, in one piece: 40-50 ms for the 3,750 samples of one SLA family at 625
    networks); any other family in one piece, by prometheus_client."""
    if metric.type != "gauge" or any(s.name != metric.name or s.timestamp is not None
                                     or getattr(s, "exemplar", None) is not None
                                     or getattr(s, "native_histogram", None) is not None
                                     for s in metric.samples):
        out.append(_stock_part([metric], fmt))
        return
    shown = _shown_name(metric.name, fmt.openmetrics, fmt.escaping)
    if shown is None:  # a quoted name: prometheus_client's
        out.append(_stock_part([metric], fmt))
        return
    head = _Head.of(_Named(metric.name, metric.documentation, metric.unit), "gauge", fmt)
    lines = [head.main]
    esc = fmt.escaping
    for done, sample in enumerate(metric.samples, 1):
        labels = sample.labels
        pairs = ",".join([_label_pair(k, v, esc) for k, v in sorted(labels.items())]) \
            if labels else None
        lines.append(f"{shown}{{{pairs}}} ".encode() if pairs is not None
                     else f"{shown} ".encode())
        lines.append(_go_bytes(sample.value) + b"\n")
        if not done % 64 and budget.spent():
            yield
    out.append(b"".join(lines))


@dataclass(frozen=True, slots=True)
class _Named:
    """A collector's metric family as _Head reads a wrapper metric."""

    _name: str
    _documentation: str
    _unit: str


def _stock_part(metrics: Iterable[Any], fmt: Format) -> bytes:
    """prometheus_client's text for some metric families (without OpenMetrics' `# EOF`)."""
    body = stock_encoder(fmt)(_One(metrics))
    return body[:-len(_EOF)] if fmt.openmetrics else body


# What changes whenever a child's values do: the value of a counter or gauge, the sum of a
# histogram or summary (every observe adds to it). Each change is a new float object.
_MARKS = {"counter": attrgetter("_value._value"), "gauge": attrgetter("_value._value"),
          "histogram": attrgetter("_sum._value"), "summary": attrgetter("_sum._value")}


def _reads_function(child: Any) -> bool:
    return "_child_samples" in vars(child)  # Gauge.set_function replaces it per child


class _Family:
    """One labelled metric's text in one format, kept from scrape to scrape: per child (in the
    metric's own order) its template, its change mark and the text that mark gave."""

    def __init__(self, collector: Any, kind: str, fmt: Format, created: bool) -> None:
        self.collector, self.kind, self.fmt = collector, kind, fmt
        self.use_created = created  # prometheus_client's switch when this was made
        self.created = created and kind != "gauge"  # whether this family writes `_created`
        self.head = _Head.of(collector, kind, fmt)
        self.mark = _MARKS[kind]
        self.children: list[Any] = []
        self.marks: list[float] = []
        self.templates: list[_Template] = []
        self.texts: list[bytes] = []
        self.late = b""  # text format: the `_created` gauge family written after this one

    def render(self, out: list[bytes], budget: _Slice) -> Iterator[None]:
        """Append the family's text to `out`, yielding whenever `budget` is spent. A child
        updated meanwhile is rendered with its newer values (a counter or gauge with the value
        its mark holds) and again at the next scrape."""
        collector = self.collector
        with collector._lock:
            children = list(collector._metrics.values())
        if self.kind == "gauge" and any(map(_reads_function, children)):
            raise _Unusual  # a gauge reading a function: prometheus_client's path
        same = len(children) == len(self.children) and all(map(is_, children, self.children))
        items: list[tuple[tuple[str, ...], Any]] = []
        if not same:  # the label values too, for the new children's templates
            with collector._lock:
                items = list(collector._metrics.items())
            children = [child for _, child in items]
        marks: list[float] = []
        for first in range(0, len(children), _MARKS_AT_ONCE):  # a family can hold 10,000s
            marks += map(self.mark, children[first:first + _MARKS_AT_ONCE])
            if budget.spent():
                yield
        if same:  # format only the children whose mark is a new object
            texts, templates = self.texts, self.templates
            changed = list(compress(range(len(marks)), map(is_not, marks, self.marks)))
            for i in changed:
                texts[i] = self._text(children[i], marks[i], templates[i])
                if budget.spent():
                    yield
        else:  # children came or went: keep what is known of the others
            known = {id(c): i for i, c in enumerate(self.children)}
            templates, texts = [], []
            for (values, child), mark in zip(items, marks, strict=True):
                if budget.spent():
                    yield
                at = known.get(id(child))
                if at is None:
                    t = _Template.of(collector, self.kind, values, child, self.fmt)
                    text = self._text(child, mark, t)
                else:
                    t = self.templates[at]
                    text = self.texts[at] if self.marks[at] is mark \
                        else self._text(child, mark, t)
                templates.append(t)
                texts.append(text)
            self.templates, self.texts, self.children = templates, texts, children
            lates = b"".join([t.created for t in templates]) \
                if self.created and not self.fmt.openmetrics else b""
            self.late = self.head.late + lates if lates else b""
        self.marks = marks
        out.append(self.head.main)
        out += texts
        if self.late:
            out.append(self.late)

    def _text(self, child: Any, mark: float, t: _Template) -> bytes:
        kind = self.kind
        if kind == "histogram":
            buckets = child._buckets
            if self.fmt.openmetrics and [*map(_exemplar, buckets)].count(None) != len(buckets):
                raise _Unusual
            # the same float additions, in the same order, as Histogram._child_samples (which
            # starts from 0.0: 0.0 + a count is that count, never -0.0)
            counts = list(accumulate(map(_value, buckets)))
            counts.append(counts[-1])
            sums = (child._sum._value,) if child._upper_bounds[0] >= 0 else ()
            if len(_COUNTS) > 100_000:
                _COUNTS.clear()
            text = t.main % (*map(_COUNTS.__getitem__, counts), *map(_go_bytes, sums))
        elif kind == "summary":
            text = t.main % (_go_bytes(child._count._value), _go_bytes(child._sum._value))
        else:
            if self.fmt.openmetrics and kind == "counter" and child._value._exemplar is not None:
                raise _Unusual
            text = t.main % _go_bytes(mark)
        return text + t.created if self.created and self.fmt.openmetrics else text


# -- what is cached ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Head:
    """A family's HELP/TYPE lines, and (text format) those of its `_created` gauge family."""

    main: bytes
    late: bytes

    @staticmethod
    def of(collector: Any, kind: str, fmt: Format) -> _Head:
        name, doc = collector._name, collector._documentation
        if fmt.openmetrics:
            metric_name = _om.escape_metric_name(name, fmt.escaping)
            help_text = _om._escape(doc, _om.ALLOWUTF8, _om._is_legacy_labelname_rune)
            unit = f"# UNIT {metric_name} {collector._unit}\n" if collector._unit else ""
            return _Head(f"# HELP {metric_name} {help_text}\n# TYPE {metric_name} {kind}\n"
                         f"{unit}".encode(), b"")
        escape = om_exposition.escape_metric_name
        shown = name + "_total" if kind == "counter" else name
        help_text = doc.replace("\\", r"\\").replace("\n", r"\n")
        created_name = escape(name + "_created", fmt.escaping)
        return _Head(f"# HELP {escape(shown, fmt.escaping)} {help_text}\n"
                     f"# TYPE {escape(shown, fmt.escaping)} {kind}\n".encode(),
                     f"# HELP {created_name} {help_text}\n# TYPE {created_name} gauge\n".encode())


@dataclass(frozen=True, slots=True)
class _Template:
    """One child's text, UTF-8, with `%s` where its values go (`%%` for a literal %: no
    other byte of UTF-8 is a '%')."""

    main: bytes
    created: bytes  # the whole `_created` line (its value never changes), b"" if none

    @staticmethod
    def of(collector: Any, kind: str, values: tuple[str, ...], child: Any, fmt: Format
           ) -> _Template:
        esc = fmt.escaping
        base = sorted(zip(collector._labelnames, values, strict=True))
        pairs = [_label_pair(k, v, esc) for k, v in base]
        name = collector._name

        def line(suffix: str, labels: list[str]) -> str:
            shown = _shown_name(name + suffix, fmt.openmetrics, esc)
            if shown is None:
                raise _Unusual  # a quoted name inside the braces: left to prometheus_client
            text = shown + ("{" + ",".join(labels) + "} " if labels else " ")
            return text.replace("%", "%%") + "%s\n"

        if kind == "counter":
            main = line("_total", pairs)
        elif kind == "gauge":
            main = line("", pairs)
        elif kind == "summary":
            main = line("_count", pairs) + line("_sum", pairs)
        else:
            bounds = child._upper_bounds
            at = bisect.bisect([k for k, _ in base], "le")  # where `le` sorts among the names
            head, tail = pairs[:at], pairs[at:]
            main = "".join([line("_bucket", [*head, le, *tail])
                            for le in _le_pairs(tuple(map(_go_float, bounds)), esc)]) \
                + line("_count", pairs) + (line("_sum", pairs) if bounds[0] >= 0 else "")
        created = ""
        if kind != "gauge":
            created = line("_created", pairs) % _go_float(child._created)
        return _Template(main.encode(), created.encode())


@functools.cache
def _shown_name(sample_name: str, openmetrics: bool, escaping: str) -> str | None:
    om = _om
    if escaping == om.ALLOWUTF8 and not om._is_valid_legacy_metric_name(sample_name):
        return None
    if openmetrics:
        return str(om._escape(sample_name, escaping, om._is_legacy_labelname_rune))
    return str(om.escape_metric_name(sample_name, escaping))


@functools.lru_cache(maxsize=1 << 10)
def _le_pairs(bounds: tuple[str, ...], escaping: str) -> list[str]:
    # keyed by the bounds' text: as floats, a bound of -0.0 would find the pairs of 0.0
    return [_label_pair("le", b, escaping) for b in bounds]


@functools.lru_cache(maxsize=1 << 16)
def _label_pair(name: str, value: str, escaping: str) -> str:
    """`name="value"`: values are escaped alike in both formats (backslash, newline, quote)."""
    om = _om
    return f'{om.escape_label_name(name, escaping)}=' \
           f'"{om._escape(value, om.ALLOWUTF8, om._is_legacy_labelname_rune)}"'


def stock_encoder(fmt: Format) -> Callable[[Collector], bytes]:
    """prometheus_client's encoder for `fmt` (tests compare against it). The defaults are left
    to the encoder, so that a client without name escaping still renders them."""
    kw: dict[str, Any] = {}
    if fmt.escaping != DEFAULT_ESCAPING:
        kw["escaping"] = fmt.escaping
    if fmt.openmetrics:
        if fmt.version != "1.0.0":
            kw["version"] = fmt.version
        return partial(_om.generate_latest, **kw)
    text_latest: Any = text_exposition.generate_latest
    return partial(text_latest, **kw)
