"""Grafana dashboards as code, built with Grafana's own grafana-foundation-sdk.

    python -m dashboards.build            # rewrite dashboards/*.json
    python -m dashboards.build --check    # exit 1 if a committed file is out of date (CI)

Four dashboards, linked to each other: network comparison (the landing page), network
detail, SLA and error budgets, prober health. Every query reads the series of
docs/metrics.md or the generator's recording rules (monitor/exporter/rules.py); tests run
each one on a real Prometheus (tests/test_dashboard_queries.py). To add a panel, add one call
to the list of its dashboard's row below and regenerate.

Template variables: `network`, `target` (model tier), `workload` (the job's name) and
`location`, a scrape-side label (docs/metrics.md). The `slo:*` recording rules sum over
locations, targets and workloads, so SLO panels follow `network` only.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from grafana_foundation_sdk.builders import (
    bargauge,
    dashboard,
    heatmap,
    prometheus,
    stat,
    table,
    timeseries,
)
from grafana_foundation_sdk.builders import (
    common as cb,
)
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import heatmap as hm
from grafana_foundation_sdk.models.dashboard import (
    DashboardLinkType,
    DataSourceRef,
    DataTransformerConfig,
    Threshold,
    ThresholdsMode,
    VariableRefresh,
    VariableSort,
)

from deploy import generated
from monitor.core.result import NOT_THE_NETWORKS_FAULT

OUT_DIR = Path(__file__).resolve().parent
TAG = "depin-monitor"
DS = DataSourceRef(type_val="prometheus", uid="prometheus")  # provisioning/datasources

# Selectors. `location` is a target label; `.*` (All) also matches series without it.
PROBE = 'network=~"$network",target=~"$target",workload=~"$workload",location=~"$location"'
NET = 'network=~"$network",location=~"$location"'  # per-network series of the monitor
SLO = 'network=~"$network"'  # recording rules: summed over locations, targets, workloads
MONITOR = 'job="depin-monitor",location=~"$location"'

RUNS = f"depin_probe_runs_total{{{PROBE}}}"
FAILS = f"depin_probe_failures_total{{{PROBE}}}"  # every outcome's series exists from start


def fails(outcome: str) -> str:
    """The failures counter for an outcome matcher, e.g. '="disconnect"' or '!="x"'."""
    return f"depin_probe_failures_total{{{PROBE},outcome{outcome}}}"


# Runs refused for the monitor's own key or credits (auth_error, quota_exhausted): left out of
# availability and the disconnect rate, as in the SLA maths and the generated rules.
BUYER_SIDE_OUTCOMES = "|".join(sorted(NOT_THE_NETWORKS_FAULT))
BUYER_SIDE = fails(f'=~"{BUYER_SIDE_OUTCOMES}"')
NETWORK_FAILS = fails(f'!~"{BUYER_SIDE_OUTCOMES}"')
# excl. 429: rate-limited runs left out as well (OpenRouter's convention)
LIMITED_OR_BUYER = fails(f'=~"rate_limited|{BUYER_SIDE_OUTCOMES}"')
NEITHER_LIMITED_NOR_BUYER = fails(f'!~"rate_limited|{BUYER_SIDE_OUTCOMES}"')
DISCONNECTS = fails('="disconnect"')
GOOD = f"depin_probe_good_total{{{PROBE}}}"


# Burn-rate alert pairs of monitor/exporter/rules.py: (severity, factor, long window, short window).
BURN_PAIRS = (("page", 14.4, "1h", "5m"), ("page", 6, "6h", "30m"),
              ("ticket", 3, "1d", "2h"), ("ticket", 1, "3d", "6h"))


# -- queries ---------------------------------------------------------------------------------

def rate(metric: str, by: str = "network", window: str = "$__rate_interval") -> str:
    return f"sum by ({by}) (rate({metric}[{window}]))"


def share(failures: str, runs: str, by: str = "network", window: str = "$__rate_interval"
          ) -> str:
    """failures / runs over the window (a ratio of rates)."""
    return f"{rate(failures, by, window)} / {rate(runs, by, window)}"


def judged(by: str = "network", window: str = "$__rate_interval") -> str:
    """Runs that say something about the network: all but the buyer-side ones."""
    return f"({rate(RUNS, by, window)} - {rate(BUYER_SIDE, by, window)})"


def availability(by: str = "network", window: str = "$__rate_interval") -> str:
    return f"1 - {rate(NETWORK_FAILS, by, window)} / {judged(by, window)}"


def disconnect_rate(window: str = "$__rate_interval") -> str:
    return f"{rate(DISCONNECTS, window=window)} / {judged(window=window)}"


def goodput(window: str = "$__rate_interval") -> str:
    """Runs that met every SLO at once, over the runs availability is judged on."""
    return f"{rate(GOOD, window=window)} / {judged(window=window)}"


def quantile(q: float, histogram: str, by: str = "network", sel: str = PROBE,
             window: str = "$__rate_interval") -> str:
    return (f"histogram_quantile({q:g}, sum by ({by}, le) "
            f"(rate({histogram}_bucket{{{sel}}}[{window}])))")


# Capacity ladders (docs/capacity.md): their own workload (the ladder's job), so the canaries'
# `workload` variable does not filter them.
CAPACITY = 'network=~"$network",target=~"$target",location=~"$location"'


def capacity_rows() -> list[Row]:
    """What load each network sustains, from the capacity ladders' last climb."""
    last = "max by (network, target) "
    step = "max by (network, target, streams) "
    return [("Capacity: the load each network sustains (capacity ladders)", [
        grid("Sustained concurrency", "From each tier's last capacity ladder: the most "
             "concurrent streams it held before a step broke the profile's targets (TTFT p95, "
             "decode rate, availability), the step that broke, the highest aggregate output "
             "tokens/s of any step, and how long ago the ladder ran (docs/capacity.md).", {
                 "sustained streams": q(f"{last}(depin_capacity_sustained_streams{{{CAPACITY}}})"),
                 "broke at": q(f"{last}(depin_capacity_knee_streams{{{CAPACITY}}})"),
                 "peak tok/s": q(f"{last}(depin_capacity_step_output_tokens_per_second"
                                 f"{{{CAPACITY}}})"),
                 "ladder age": q(f"time() - {last}(depin_capacity_last_ladder_timestamp_seconds"
                                 f"{{{CAPACITY}}} > 0)"),
             }, by=["network", "target"], unit="short", width=12,
             units={"ladder age": "s"}),
        graph("Sustained concurrency over time", "Each ladder's sustained streams; dashed: "
              "the SLA capacity item's streams, where a profile sets one.",
              q(f"{last}(depin_capacity_sustained_streams{{{CAPACITY}}})",
                "{{network}} {{target}}"),
              q(f"max by (network) (depin_capacity_objective_streams{{{NET}}})",
                "{{network}} target"), unit="short", width=12),
        bars("Throughput by concurrency (last ladder)", "Aggregate output tokens/s of ok runs "
             "at each step: it grows with the streams up to the network's capacity, then "
             "flattens or falls.",
             q(f"{step}(depin_capacity_step_output_tokens_per_second{{{CAPACITY}}})",
               "{{network}} {{target}} x{{streams}}", instant=True),
             unit="short", base="blue", min_value=0),
        bars("TTFT p95 by concurrency (last ladder)", "Past the capacity requests queue: the "
             "time to first token jumps at the knee.",
             q(f"{step}(depin_capacity_step_ttft_p95_seconds{{{CAPACITY}}})",
               "{{network}} {{target}} x{{streams}}", instant=True),
             unit="s", base="green", steps=[(2, "orange"), (5, "red")], min_value=0),
        graph("Ladder requests per hour", "Requests the capacity ladders sent: what they "
              "cost. Bounded by each network's max_requests a ladder.",
              q(f"sum by (network) (increase(depin_capacity_requests_total{{{CAPACITY}}}[1h]))",
                "{{network}}"), unit="short", width=12),
        grid("How the ladders stopped", "Ladders since the monitor started, by why they "
             "stopped: knee (a step broke), top (every step held), rate_limited (a 429), "
             "account (key or credits), budget (a hard limit), cancelled.", {
                 "ladders": q(f"sum by (network, target, stopped) "
                              f"(depin_capacity_ladders_total{{{CAPACITY}}}) > 0"),
             }, by=["network", "target", "stopped"], unit="short", width=12),
    ])]


def objective(sli: str) -> str:
    """The configured target of an SLI (in its own unit), drawn as a dashed line."""
    return f'max by (network) (depin_sla_objective{{{NET},sli="{sli}"}})'


def q(expr: str, legend: str = "", *, instant: bool = False, fmt: str = "") -> Builder:
    query = prometheus.Dataquery().expr(expr).legend_format(legend or "__auto")
    if instant:
        query = query.instant()
    if fmt:
        query = query.format(fmt)
    return query


# -- panels ----------------------------------------------------------------------------------

def _common(panel, title: str, description: str, queries: Sequence[Builder], unit: str,
            width: int, height: int):
    panel = panel.title(title).description(description).datasource(DS).unit(unit)
    for ref, query in zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ", queries, strict=False):
        panel = panel.with_target(query.ref_id(ref))
    return panel.span(width).height(height)


def graph(title: str, description: str, *queries: Builder, unit: str = "short",
          width: int = 12, height: int = 8, stacked: bool = False, lines: Sequence[float] = (),
          min_value: float | None = None, max_value: float | None = None):
    """A time series. `lines`: thresholds drawn as dashed lines (alert factors, floors)."""
    panel = _common(timeseries.Panel(), title, description, queries, unit, width, height)
    panel = panel.legend(cb.VizLegendOptions()
                         .display_mode(common.LegendDisplayMode.TABLE)
                         .placement(common.LegendPlacement.BOTTOM).show_legend(True)
                         .calcs(["lastNotNull", "max"]))
    panel = panel.tooltip(cb.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI)
                          .sort(common.SortOrder.DESCENDING))
    if stacked:
        panel = panel.stacking(cb.StackingConfig().mode(common.StackingMode.NORMAL)
                               ).fill_opacity(40)
    if lines:
        panel = panel.thresholds(threshold_steps(None, *((v, "red") for v in lines))
                                 ).thresholds_style(cb.GraphThresholdsStyleConfig()
                                                    .mode(common.GraphThresholdsStyleMode.DASHED))
    if min_value is not None:
        panel = panel.min(min_value)
    if max_value is not None:
        panel = panel.max(max_value)
    return panel


def heat(title: str, description: str, histogram: str, unit: str, width: int = 12):
    """A heatmap of a classic histogram's buckets (runs per bucket per interval)."""
    query = q(f"sum by (le) (increase({histogram}_bucket{{{PROBE}}}[$__rate_interval]))",
              "{{le}}", fmt="heatmap")
    panel = _common(heatmap.Panel(), title, description, [query], unit, width, 9)
    return (panel.calculate(False)
            .y_axis(heatmap.YAxisConfig().unit(unit))
            .rows_frame(heatmap.RowsHeatmapOptions().layout(common.HeatmapCellLayout.LE))
            .color(heatmap.HeatmapColorOptions().mode(hm.HeatmapColorMode.SCHEME)
                   .scheme("Oranges").scale(hm.HeatmapColorScale.EXPONENTIAL)
                   .exponent(0.5))
            .cell_values(heatmap.CellValues().unit("short")))


def single(title: str, description: str, *queries: Builder, unit: str = "short",
           width: int = 6, height: int = 5, steps: Sequence[tuple[float, str]] = (),
           base: str = "green"):
    panel = _common(stat.Panel(), title, description, queries, unit, width, height)
    panel = panel.graph_mode(common.BigValueGraphMode.NONE).reduce_options(
        cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    return panel.thresholds(threshold_steps(base, *steps)).color_mode(
        common.BigValueColorMode.BACKGROUND)


def bars(title: str, description: str, *queries: Builder, unit: str = "percentunit",
         width: int = 12, height: int = 8, steps: Sequence[tuple[float, str]] = (),
         base: str = "red", min_value: float | None = None, max_value: float | None = None):
    panel = _common(bargauge.Panel(), title, description, queries, unit, width, height)
    panel = (panel.display_mode(common.BarGaugeDisplayMode.GRADIENT)
             .orientation(common.VizOrientation.HORIZONTAL)
             .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"])
                             .values(False))
             .thresholds(threshold_steps(base, *steps)))
    if min_value is not None:
        panel = panel.min(min_value)
    if max_value is not None:
        panel = panel.max(max_value)
    return panel


def grid(title: str, description: str, columns: dict[str, Builder], *, by: Sequence[str],
         unit: str = "short", width: int = 24, height: int = 8,
         units: dict[str, str] | None = None):
    """A table: one instant query a column, joined on the `by` labels.

    `columns` maps a column title to its query; Grafana names a query's value column
    `Value #<refId>`, which the organize transformation renames to the title.
    """
    queries = [query.instant().format("table") for query in columns.values()]
    panel = _common(table.Panel(), title, description, queries, unit, width, height)
    renames = {f"Value #{ref}": name for ref, name in zip("ABCDEFGHIJKLMNOP", columns,
                                                          strict=False)}
    panel = panel.with_transformation(DataTransformerConfig(id_val="merge", options={}))
    panel = panel.with_transformation(DataTransformerConfig(id_val="organize", options={
        "renameByName": renames,
        "excludeByName": {"Time": True, "__name__": True, "job": True, "instance": True,
                          "sloth_id": True, "sloth_service": True, "sloth_slo": True},
        "indexByName": {name: i for i, name in enumerate([*by, *renames])},
    }))
    for column, column_unit in (units or {}).items():  # overrides see the renamed fields
        panel = panel.override_by_name(column, [{"id": "unit", "value": column_unit}])
    return panel


def threshold_steps(base: str | None, *steps: tuple[float, str]) -> Builder:
    values = ([Threshold(value=None, color=base)] if base else
              [Threshold(value=None, color="transparent")])
    values += [Threshold(value=value, color=color) for value, color in steps]
    return dashboard.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(values)


# -- variables -------------------------------------------------------------------------------

def variable(name: str, label: str, definition: str, *, multi: bool = True) -> Builder:
    return (dashboard.QueryVariable(name).label(label).datasource(DS).query(definition)
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED).sort(VariableSort.ALPHABETICAL_ASC)
            .multi(multi).include_all(True).all_value(".*"))


LOCATION = variable("location", "location",
                    'label_values(up{job="depin-monitor"}, location)')
NETWORK = variable("network", "network",
                   'label_values(depin_probe_runs_total{location=~"$location"}, network)')
TARGET = variable("target", "model tier",
                  'label_values(depin_probe_runs_total{network=~"$network"}, target)')
WORKLOAD = variable("workload", "workload",
                    'label_values(depin_probe_runs_total{network=~"$network"}, workload)')
SLI = variable("sli", "SLI", 'label_values(slo:objective:ratio{network=~"$network"}, sli)')


# -- dashboards ------------------------------------------------------------------------------

Row = tuple[str, list[Builder]]


def board(uid: str, title: str, description: str, variables: Sequence[Builder],
          rows: Sequence[Row], time_from: str = "now-6h") -> Builder:
    built = (dashboard.Dashboard(title).uid(uid).description(description).tags([TAG])
             .timezone("utc").time(time_from, "now").refresh("1m").editable()
             .tooltip(1)  # shared crosshair
             .link(dashboard.DashboardLink("depin-monitor")
                   .type(DashboardLinkType.DASHBOARDS).tags([TAG]).as_dropdown(True)
                   .include_vars(True).keep_time(True)))
    for var in variables:
        built = built.with_variable(var)
    panel_id = 0
    for row_title, panels in rows:
        panel_id += 1
        built = built.with_row(dashboard.Row(row_title).id(panel_id))
        for panel in panels:
            panel_id += 1
            built = built.with_panel(panel.id(panel_id))
    return built


def comparison() -> Builder:
    """The landing page: every network side by side."""
    window = "$__range"
    table_columns = {
        "runs": q(f"round(sum by (network) (increase({RUNS}[$__range])))"),
        "availability": q(availability(window=window)),
        "key/credits": q(f"round(sum by (network) (increase({BUYER_SIDE}[$__range])))"),
        "TTFT p95": q(quantile(0.95, "depin_probe_ttft_seconds", window=window)),
        "E2E p99": q(quantile(0.99, "depin_probe_duration_seconds", window=window)),
        "decode tok/s p50": q(quantile(0.5, "depin_probe_tokens_per_second", window=window)),
        "disconnects": q(disconnect_rate(window)),
        "goodput": q(goodput(window)),
        "month availability": q(f"max by (network) (depin_sla_month_availability_ratio{{{NET}}})"),
        # A configured model the network no longer lists is the catalog's problem, not an outage
        "models not listed": q(f"sum by (network) (1 - depin_catalog_model_listed{{{NET}}})"),
    }
    rows: list[Row] = [
        ("Side by side over the selected time range", [
            grid("Networks", "The same jobs on every network over the dashboard's time range. "
                 "Availability: ok runs / runs, leaving out key/credits: runs refused for the "
                 "monitor's own key or credits (auth_error, quota_exhausted), which are not "
                 "the network's failures. Goodput: runs that met every SLO of their profile at "
                 "once, of the same runs (key/credits left out). Month availability: the "
                 "store's calendar-month figure (maintenance excluded).", table_columns,
                 by=["network"], unit="percentunit",
                 units={"runs": "short", "key/credits": "short", "TTFT p95": "s",
                        "E2E p99": "s", "decode tok/s p50": "short",
                        "models not listed": "short"}),
            grid("Is each network serving the model it claims?", "The latest model equality "
                 "test of each network and model against its reference (docs/equality.md): "
                 "the MMD permutation p-value, the completions it used, and how many tests in "
                 "a row said \"differs\" (DepinModelDiffersFromReference fires at the "
                 "configured count). A difference is a flag, not proof of substitution.", {
                     "p-value": q(f"max by (network, model, reference) "
                                  f"(depin_model_equality_p_value{{{NET}}})"),
                     "samples": q(f"max by (network, model, reference) "
                                  f"(depin_model_equality_samples{{{NET}}})"),
                     "differs in a row": q(f"max by (network, model, reference) "
                                           f"(depin_model_equality_differs_in_a_row{{{NET}}})"),
                 }, by=["network", "model", "reference"], unit="short", height=6),
            grid("Did the model behind each name change?", "The latest fingerprint run of "
                 "each network and model (docs/fingerprint.md): the mean total-variation "
                 "distance of its first tokens on its border inputs from its own trailing "
                 "baseline, that test's permutation p-value, the alarm (\"changed\" or "
                 "\"differs from reference\"; DepinModelChanged follows it) and when a run "
                 "last said \"changed\". A change is a flag, not proof.", {
                     "TV distance": q(f"max by (network, model) "
                                      f"(depin_fingerprint_distance{{{NET}}})"),
                     "p-value": q(f"max by (network, model) "
                                  f"(depin_fingerprint_p_value{{{NET}}})"),
                     "alarm": q(f"max by (network, model) (depin_fingerprint_alarm{{{NET}}})"),
                     "last change": q(f"max by (network, model) "
                                      f"(depin_fingerprint_last_change_timestamp_seconds"
                                      f"{{{NET}}}) * 1000"),
                 }, by=["network", "model"], unit="short",
                 units={"last change": "dateTimeAsIso"}, height=6),
        ]),
        ("Over time", [
            graph("Availability", "Share of ok runs, runs refused for the monitor's own key "
                  "or credits left out; dashed: without rate-limited runs either (OpenRouter's "
                  "convention); target: the SLA profile's objective.",
                  q(availability(), "{{network}}"),
                  q(f"1 - {rate(NEITHER_LIMITED_NOR_BUYER)} / ({rate(RUNS)} - "
                    f"{rate(LIMITED_OR_BUYER)})", "{{network}} excl. 429"),
                  q(objective("availability"), "{{network}} target"),
                  unit="percentunit", max_value=1),
            graph("Time to first token p50 / p95", "From request sent to the first generated "
                  "token (not the role-only chunk), interpolated within histogram buckets.",
                  q(quantile(0.5, "depin_probe_ttft_seconds"), "{{network}} p50"),
                  q(quantile(0.95, "depin_probe_ttft_seconds"), "{{network}} p95"),
                  q(objective("ttft_p95"), "{{network}} p95 target"), unit="s"),
            graph("End-to-end p99", "Request sent to the terminal event, completed runs only.",
                  q(quantile(0.99, "depin_probe_duration_seconds"), "{{network}}"),
                  q(objective("e2e_p99"), "{{network}} target"), unit="s"),
            graph("Decode rate, median", "Tokens per second after the first token.",
                  q(quantile(0.5, "depin_probe_tokens_per_second"), "{{network}}"),
                  q(objective("decode_tps"), "{{network}} floor"), unit="short"),
            graph("Disconnect rate", "Runs cut after the request was sent, before the "
                  "terminal event, over the runs availability is judged on.",
                  q(disconnect_rate(), "{{network}}"),
                  q(objective("disconnect_rate"), "{{network}} target"), unit="percentunit"),
            graph("Failures by outcome", "Failed runs per second, by network and outcome.",
                  q(f"{rate(FAILS, 'network, outcome')} > 0", "{{network}} {{outcome}}"),
                  unit="short", stacked=True),
            graph("Goodput", "Share of runs that met every SLO of their profile at once, "
                  "runs refused for the monitor's own key or credits left out (as in "
                  "availability).",
                  q(goodput(), "{{network}}"),
                  unit="percentunit", max_value=1),
            graph("Time since the last successful run", "Grows by one second a second while "
                  "a network fails every run.",
                  q("time() - max by (network) "
                    f"(depin_probe_last_success_timestamp_seconds{{{PROBE}}} > 0)",
                    "{{network}}"), unit="s"),
        ]),
        *capacity_rows(),
    ]
    return board("depin-comparison", "depin-monitor: network comparison",
                 "The same standardized inference jobs on every network, side by side.",
                 [LOCATION, NETWORK, TARGET, WORKLOAD], rows)


def detail() -> Builder:
    """One network (or a few) in depth: latency distributions, outcomes, locations."""
    ok_rate = f"{rate(RUNS)} - {rate(FAILS)}"
    wrong = rate(fails('="wrong_output"'))
    rows: list[Row] = [
        ("Latency distributions (histogram buckets)", [
            heat("Time to first token", "Runs per TTFT bucket per interval.",
                 "depin_probe_ttft_seconds", "s"),
            heat("End to end", "Runs per end-to-end bucket (completed runs).",
                 "depin_probe_duration_seconds", "s"),
            heat("Decode rate", "Runs per decode-rate bucket (tokens/s).",
                 "depin_probe_tokens_per_second", "short"),
            heat("Largest gap between tokens", "Runs per max inter-token gap bucket: "
                 "stalls show here first.", "depin_probe_inter_token_gap_seconds", "s"),
        ]),
        ("Percentiles", [
            graph("TTFT percentiles", "p50, p90, p95 and p99 of time to first token.",
                  *(q(quantile(p, "depin_probe_ttft_seconds"), f"{{{{network}}}} p{p * 100:g}")
                    for p in (0.5, 0.9, 0.95, 0.99)),
                  q(objective("ttft_p95"), "{{network}} p95 target"), unit="s"),
            graph("End-to-end percentiles", "p50, p90 and p99 of completed runs.",
                  *(q(quantile(p, "depin_probe_duration_seconds"),
                      f"{{{{network}}}} p{p * 100:g}") for p in (0.5, 0.9, 0.99)),
                  q(objective("e2e_p99"), "{{network}} p99 target"), unit="s"),
            graph("Decode rate percentiles", "p10, p50 and p90 tokens/s after the first token.",
                  *(q(quantile(p, "depin_probe_tokens_per_second"),
                      f"{{{{network}}}} p{p * 100:g}") for p in (0.1, 0.5, 0.9)),
                  q(objective("decode_tps"), "{{network}} floor"), unit="short"),
            graph("Largest inter-token gap p50 / p99", "Per run, the longest pause between "
                  "two tokens.",
                  q(quantile(0.5, "depin_probe_inter_token_gap_seconds"), "{{network}} p50"),
                  q(quantile(0.99, "depin_probe_inter_token_gap_seconds"), "{{network}} p99"),
                  unit="s"),
        ]),
        ("Outcomes", [
            graph("Runs by outcome", "Runs per second: ok, and each failure outcome.",
                  q(ok_rate, "{{network}} ok"),
                  q(f"{rate(FAILS, 'network, outcome')} > 0", "{{network}} {{outcome}}"),
                  unit="short", stacked=True),
            bars("Failure share by outcome", "Each outcome's share of all runs over the "
                 "selected time range.",
                 q(f"{rate(FAILS, 'network, outcome', '$__range')} / ignoring(outcome) "
                   f"group_left {rate(RUNS, 'network', '$__range')} > 0",
                   "{{network}} {{outcome}}", instant=True),
                 steps=[(0.01, "orange"), (0.05, "red")], base="green", min_value=0),
            graph("Wrong answers", "Completed runs whose answer failed the job's check, over "
                  "completed runs.",
                  q(f"{wrong} / ({ok_rate} + {wrong})", "{{network}}"),
                  q(objective("wrong_output_rate"), "{{network}} target"), unit="percentunit"),
            graph("Output tokens", "Output tokens received per second (the servers' usage "
                  "when reported).",
                  q(rate(f"depin_probe_output_tokens_total{{{PROBE}}}"), "{{network}}"),
                  unit="short"),
        ]),
        ("Transport: phases and certificates", [
            graph("Where the time goes (mean per phase)", "Mean seconds per run in each phase "
                  "(docs/metrics.md#phases): resolve, connect and tls only on runs that opened "
                  "a connection; processing is request sent to first byte.",
                  q(f"sum by (network, phase) (rate(depin_probe_phase_seconds_sum{{{PROBE}}}"
                    f"[$__rate_interval])) / sum by (network, phase) "
                    f"(rate(depin_probe_phase_seconds_count{{{PROBE}}}[$__rate_interval]))",
                    "{{network}} {{phase}}"), unit="s", stacked=True),
            grid("Certificates", "The earliest expiry in the certificate chain each network's "
                 "last TLS run saw, the TLS version and cipher, and whether verification is off "
                 "(tls.insecure). DepinCertificateExpiringSoon fires before expiry.", {
                     "expires in": q(f"min by (network) (depin_probe_tls_cert_expiry_timestamp_"
                                     f"seconds{{{NET}}}) - time()"),
                     "TLS": q(f"max by (network, version, cipher) "
                              f"(depin_probe_tls_info{{{NET}}})"),
                     "not verified": q(f"max by (network) (depin_probe_tls_insecure{{{NET}}})"),
                 }, by=["network", "version", "cipher"], units={"expires in": "s"},
                 width=12),
        ]),
        ("By location", [
            graph("Availability by location", "The same network seen from each location: a "
                  "drop at one location only points at the path, not the network.",
                  q(availability("network, location"), "{{network}} @ {{location}}"),
                  unit="percentunit", max_value=1),
            graph("TTFT p95 by location", "Network distance shows in TTFT first.",
                  q(quantile(0.95, "depin_probe_ttft_seconds", "network, location"),
                    "{{network}} @ {{location}}"), unit="s"),
        ]),
        ("By model tier and workload", [
            graph("Availability by tier and workload", "Large models and long jobs fail "
                  "differently from small ones.",
                  q(availability("network, target, workload"),
                    "{{network}} {{target}} {{workload}}"), unit="percentunit", max_value=1),
            graph("TTFT p95 by tier and workload", "",
                  q(quantile(0.95, "depin_probe_ttft_seconds", "network, target, workload"),
                    "{{network}} {{target}} {{workload}}"), unit="s"),
        ]),
    ]
    return board("depin-network-detail", "depin-monitor: network detail",
                 "One network in depth: latency heatmaps and percentiles from the histograms, "
                 "outcomes, locations, model tiers and workloads.",
                 [LOCATION, NETWORK, TARGET, WORKLOAD], rows)


def burn(severity: str, factor: float, long: str, short: str) -> Builder:
    expr = (f"slo:sli_error:ratio_rate{{w}}{{{{{SLO},sli=~\"$sli\"}}}} / on(network, sli) "
            f"slo:error_budget:ratio{{{{{SLO},sli=~\"$sli\"}}}}")
    return graph(f"Burn rate {long} and {short} ({severity} above {factor:g}x)",
                 f"Error ratio over the budget, over {long} and {short}. The {severity} alert "
                 f"fires when both stay above {factor:g} for 2 minutes.",
                 q(expr.format(w=long), f"{{{{network}}}} {{{{sli}}}} {long}"),
                 q(expr.format(w=short), f"{{{{network}}}} {{{{sli}}}} {short}"),
                 unit="short", lines=[factor], width=12)


def sla() -> Builder:
    """Every SLO: objectives, this month's attainment, budgets, burn rates, firing alerts."""
    slo = f'{{{SLO},sli=~"$sli"}}'
    sla_sel = f'{{{NET},sli=~"$sli"}}'
    rows: list[Row] = [
        ("Every SLO", [
            grid("Objectives, budgets and burn", "One row per network and SLI. Objective: "
                 "the required share of good runs (Sloth's slo:objective:ratio). Target: the "
                 "profile's value in the SLI's unit. Month: the store's calendar-month view "
                 "(maintenance excluded). 30-day: Prometheus' rolling view.", {
                     "objective": q(f"max by (network, sli) (slo:objective:ratio{slo})"),
                     "target": q(f"max by (network, sli) (depin_sla_objective{sla_sel})"),
                     "met this month": q(f"min by (network, sli) "
                                         f"(depin_sla_month_attained{sla_sel})"),
                     "month budget left": q(f"min by (network, sli) "
                                            f"(depin_sla_month_error_budget_remaining_ratio"
                                            f"{sla_sel})"),
                     "30-day budget left": q(f"max by (network, sli) "
                                             f"(slo:period_error_budget_remaining:ratio{slo})"),
                     "burn now (5m)": q(f"max by (network, sli) "
                                        f"(slo:current_burn_rate:ratio{slo})"),
                 }, by=["network", "sli"], unit="percentunit", height=10,
                 units={"target": "short", "met this month": "bool_yes_no",
                        "burn now (5m)": "short"}),
        ]),
        ("This calendar month (the contract's view, from the store)", [
            single("Availability this month", "Share of ok runs this UTC calendar month, "
                   "maintenance windows excluded.",
                   q(f"max by (network) (depin_sla_month_availability_ratio{{{NET}}})",
                     "{{network}}", instant=True),
                   unit="percentunit", width=8, steps=[(0.99, "orange"), (0.999, "green")],
                   base="red"),
            single("Runs this month", "Runs counted for this month's SLA.",
                   q(f"max by (network) (depin_sla_month_runs{{{NET}}})", "{{network}}",
                     instant=True), width=8, base="blue"),
            bars("Month error budget left", "1 - error ratio / budget; below 0 the month's "
                 "SLA is already missed.",
                 q(f"min by (network, sli) (depin_sla_month_error_budget_remaining_ratio"
                   f"{sla_sel})", "{{network}} {{sli}}", instant=True),
                 width=8, steps=[(0, "orange"), (0.25, "green")], min_value=-1, max_value=1),
            graph("Month error budget left", "The store's figure as it evolves through the "
                  "month.",
                  q(f"min by (network, sli) (depin_sla_month_error_budget_remaining_ratio"
                    f"{sla_sel})", "{{network}} {{sli}}"), unit="percentunit", lines=[0]),
            graph("Month burn rate", "Month-to-date error ratio / budget: above 1 the month "
                  "ends over budget at this pace.",
                  q(f"max by (network, sli) (depin_sla_month_burn_rate{sla_sel})",
                    "{{network}} {{sli}}"), unit="short", lines=[1]),
        ]),
        ("Rolling window (Prometheus recording rules)", [
            graph("Error budget left, rolling SLO window", "Sloth's "
                  "slo:period_error_budget_remaining:ratio over each profile's window.",
                  q(f"slo:period_error_budget_remaining:ratio{slo}", "{{network}} {{sli}}"),
                  unit="percentunit", lines=[0]),
            graph("Error ratio (5m)", "slo:sli_error:ratio_rate5m: the share of bad runs, "
                  "per SLI.",
                  q(f"slo:sli_error:ratio_rate5m{slo}", "{{network}} {{sli}}"),
                  unit="percentunit"),
            *(burn(*pair) for pair in BURN_PAIRS),
            graph("Error ratio by location (1h)", "Each location's own view "
                  "(location:slo_sli_error:ratio_rate1h). A burn alert fires only when at "
                  "least the config's `quorum` of locations burn at once: a line high at one "
                  "location only is that location's path, not the network (docs/scale.md).",
                  q(f'location:slo_sli_error:ratio_rate1h{{{SLO},sli=~"$sli",'
                    'location=~"$location"}', "{{network}} {{sli}} @ {{location}}"),
                  unit="percentunit"),
        ]),
        ("Alerts", [
            grid("Alerts now", "Firing and pending alerts from Prometheus (ALERTS). Prober "
                 "alerts carry network=\"all\".", {
                     "active": q('max by (alertname, severity, network, sli, alertstate) '
                                 '(ALERTS{network=~"$network|all"})'),
                 }, by=["alertname", "severity", "network", "sli", "alertstate"], height=8,
                 width=12),
            graph("Firing alerts", "Alerts firing, by name and severity.",
                  q('count by (alertname, severity) (ALERTS{alertstate="firing",'
                    'network=~"$network|all"})', "{{alertname}} ({{severity}})"),
                  unit="short", stacked=True),
        ]),
    ]
    return board("depin-sla", "depin-monitor: SLA and error budgets",
                 "Every SLO of every network: this calendar month's attainment and budget (the "
                 "store's contract view), rolling budgets and multiwindow burn rates (Prometheus), "
                 "firing alerts.", [LOCATION, NETWORK, SLI], rows, time_from="now-24h")


def prober() -> Builder:
    """The monitor watching itself: if the prober lags, every latency it reports is inflated."""
    rows: list[Row] = [
        ("Is it measuring?", [
            single("Scrape up", "1: Prometheus reaches the monitor.",
                   q(f"up{{{MONITOR}}}", "{{instance}} {{location}}", instant=True),
                   base="red", steps=[(1, "green")], width=6),
            single("Uptime", "Since the monitor started.",
                   q(f"time() - depin_monitor_start_time_seconds{{{MONITOR}}}",
                     "{{instance}}", instant=True), unit="s", base="blue", width=6),
            grid("Build", "Version of each monitor.", {
                "up": q(f"depin_monitor_build_info{{{MONITOR}}}"),
            }, by=["instance", "location", "version", "python_version"], width=12, height=5),
            graph("Time since the last run, per network", "A network whose runs stopped "
                  "(DepinProbesStopped pages after 3 intervals).",
                  q("time() - max by (network) "
                    f"(depin_probe_last_run_timestamp_seconds{{{PROBE}}} > 0)", "{{network}}"),
                  unit="s"),
            graph("Runs started", "Runs per second, by network.",
                  q(rate(RUNS), "{{network}}"), unit="short", stacked=True),
        ]),
        ("Is it measuring accurately?", [
            graph("Event-loop lag p50 / p99", "How late the loop ran a periodic wake-up; lag "
                  "inflates every timing. The overload alert fires above 0.1 s p99.",
                  q(quantile(0.5, "depin_monitor_event_loop_lag_seconds", "instance", MONITOR),
                    "{{instance}} p50"),
                  q(quantile(0.99, "depin_monitor_event_loop_lag_seconds", "instance", MONITOR),
                    "{{instance}} p99"), unit="s", lines=[0.1]),
            graph("Scheduling lateness p90", "Actual minus scheduled start of each run. The "
                  "overload alert fires above 5 s.",
                  q(quantile(0.9, "depin_monitor_scheduling_lateness_seconds", "network", NET),
                    "{{network}}"), unit="s", lines=[5]),
            graph("Runs measured while the loop lagged", "These runs are flagged `lagged` in "
                  "the store.",
                  q(rate(f"depin_monitor_lagged_runs_total{{{NET}}}"), "{{network}}"),
                  unit="short"),
            graph("Runs in flight", "Runs running at once (bounded by `concurrency`).",
                  q(f"depin_monitor_runs_in_flight{{{MONITOR}}}", "{{instance}}"), unit="short"),
        ]),
        ("Resources", [
            graph("CPU", "Cores used by the monitor process.",
                  q(f"rate(process_cpu_seconds_total{{{MONITOR}}}[$__rate_interval])",
                    "{{instance}}"), unit="short", width=8),
            graph("Resident memory", "", q(f"process_resident_memory_bytes{{{MONITOR}}}",
                                          "{{instance}}"), unit="bytes", width=8),
            graph("Scrape duration and SLA evaluation", "How long Prometheus' scrape takes, "
                  "and the store's month evaluation inside it.",
                  q(f"scrape_duration_seconds{{{MONITOR}}}", "{{instance}} scrape"),
                  q(f"depin_sla_evaluation_duration_seconds{{{MONITOR}}}",
                    "{{instance}} SLA evaluation"), unit="s", width=8),
        ]),
    ]
    return board("depin-prober-health", "depin-monitor: prober health",
                 "The monitor watching itself: scrape, event-loop lag, scheduling lateness, "
                 "resources. If the prober lags, the latencies it reports are inflated.",
                 [LOCATION, NETWORK, TARGET, WORKLOAD], rows)


DASHBOARDS = {
    "depin-network-comparison.json": comparison,
    "depin-network-detail.json": detail,
    "depin-sla.json": sla,
    "depin-prober-health.json": prober,
}


def rendered() -> dict[str, str]:
    return {name: JSONEncoder(sort_keys=True, indent=2).encode(build().build()) + "\n"
            for name, build in DASHBOARDS.items()}


def main(argv: Sequence[str] | None = None) -> int:
    return generated.main(rendered, OUT_DIR, __doc__, "python -m dashboards.build", argv)


if __name__ == "__main__":
    sys.exit(main())
