"""Draws the harness's chart from its results (matplotlib):

    python3 bench/chart.py target/bench/results.json docs/performance.png

Top: req/s per server for plaintext, pipelined and JSON; middle: server CPU
µs per request for the same (log scale: Tornado is two orders of magnitude
above the rest); bottom: the 1 MiB file's req/s, idle memory per connection
and the wall time of 100 concurrent 1 s sleeps. Medians; whirl in orange.
bench/harness.py calls draw() at the end of a run.
"""

import json
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ORDER = ["whirl-raw", "whirl-web", "whirl-stream", "mio", "hyper", "actix", "nginx", "tornado"]
WRK = [("plaintext", "plaintext", "#4c72b0"), ("pipelined", "pipelined ×16", "#55a868"),
       ("json", "JSON", "#8172b2")]
WHIRL = "#dd8452"
PEER = "#7f7f7f"


def median(runs, key):
    values = [r[key] for r in runs if key in r]
    return statistics.median(values) if values else None


def grouped(ax, results, key, title, log=False):
    workloads = results["workloads"]
    servers = [s for s in ORDER if any(s in workloads.get(w, {}) for w, _, _ in WRK)]
    width = 0.8 / len(WRK)
    for i, (workload, label, color) in enumerate(WRK):
        runs = workloads.get(workload, {})
        xs, ys = [], []
        for j, server in enumerate(servers):
            value = median(runs.get(server, []), key)
            if value is not None:
                xs.append(j + (i - 1) * width)
                ys.append(value)
        bars = ax.bar(xs, ys, width, label=label, color=color)
        for bar, y in zip(bars, ys):
            text = "%.0fk" % (y / 1000) if key == "rps" else ("%.2g" % y if y < 10 else "%.0f" % y)
            ax.annotate(text, (bar.get_x() + bar.get_width() / 2, y), ha="center", va="bottom",
                        fontsize=7, xytext=(0, 1), textcoords="offset points")
    ax.set_xticks(range(len(servers)))
    ax.set_xticklabels(servers)
    for tick, server in zip(ax.get_xticklabels(), servers):
        if server.startswith("whirl"):
            tick.set_color(WHIRL)
            tick.set_fontweight("bold")
    top = max((b.get_height() for b in ax.patches), default=1)
    if log and top > 0:
        ax.set_yscale("log")
        ax.set_ylim(top=top * 4)
    else:
        ax.set_ylim(top=top * 1.25)
    ax.set_title(title, fontsize=11)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", ncol=len(WRK))


def single(ax, series, title, fmt, log=False):
    servers = [s for s in ORDER if s in series and series[s] is not None]
    values = [series[s] for s in servers]
    colors = [WHIRL if s.startswith("whirl") else PEER for s in servers]
    bars = ax.bar(range(len(servers)), values, color=colors)
    for bar, y in zip(bars, values):
        ax.annotate(fmt(y), (bar.get_x() + bar.get_width() / 2, y), ha="center", va="bottom",
                    fontsize=7, xytext=(0, 1), textcoords="offset points")
    ax.set_xticks(range(len(servers)))
    ax.set_xticklabels(servers, rotation=30, ha="right", fontsize=8)
    if log and values:
        ax.set_yscale("log")
        ax.set_ylim(top=max(values) * 3)
    elif values:
        ax.set_ylim(top=max(values) * 1.15)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)


def draw(results, path):
    fig = plt.figure(figsize=(12, 11), dpi=110)
    grid = fig.add_gridspec(3, 3, height_ratios=[1, 1, 0.9], hspace=0.45, wspace=0.3)
    grouped(fig.add_subplot(grid[0, :]), results, "rps",
            "requests per second (median; wrk -t1 on the other core — higher is better)")
    grouped(fig.add_subplot(grid[1, :]), results, "us",
            "server CPU µs per request (median, log scale — lower is better)", log=True)
    static = results["workloads"].get("static", {})
    single(fig.add_subplot(grid[2, 0]), {s: median(r, "rps") for s, r in static.items()},
           "1 MiB static file: req/s", lambda y: "%.0f" % y)
    single(fig.add_subplot(grid[2, 1]),
           {s: median(r, "kib") for s, r in results.get("idle", {}).items()},
           "idle keep-alive: KiB RSS per connection (log)", lambda y: "%.2f" % y, log=True)
    single(fig.add_subplot(grid[2, 2]),
           {s: median(r, "seconds") for s, r in results.get("sleep", {}).items()},
           "100 concurrent 1 s sleeps: wall s", lambda y: "%.3f" % y)
    m = results["machine"]
    fig.suptitle("whirl vs peers, one core each — %s, %s × %s, %s%s" % (
        results["date"], m["nproc"], m["cpu"], m["kernel"],
        " (quick run)" if results["settings"].get("quick") else ""), fontsize=12)
    fig.subplots_adjust(top=0.93)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: chart.py RESULTS.json OUT.png")
    with open(sys.argv[1]) as f:
        draw(json.load(f), sys.argv[2])
