"""The tables of docs/performance.md, one function a section (report.py puts them together)."""

from __future__ import annotations

from typing import Any

from benchmarks.figures import fmt, get, table

Suite = dict[str, Any]


def header(suite: Suite) -> list[str]:
    m = suite["machine"]
    took = ", ".join(f"{name} {p.get('seconds', 0):.0f} s" for name, p in suite["parts"].items())
    skipped = [f"{n} ({p['skipped']})" for n, p in suite["parts"].items() if "skipped" in p]
    failed = [f"{n} ({p['results']['error']})" for n, p in suite["parts"].items()
              if "error" in p.get("results", {})]  # fmt: skip
    lines = [
        "# Performance",
        "",
        "Written by `benchmarks/run` (benchmarks/suite.py, benchmarks/report.py) from one run;",
        "every figure sits next to a floor or a peer measured in the same run on the same",
        "machine, so compare the ratios across machines, not the raw figures.",
        "",
        f"- **Run**: {suite['date']}, commit `{m['commit']}`, {suite['seconds'] / 60:.1f} min"
        + (" (**quick**: a smoke run, small samples)" if suite.get("quick") else ""),
        f"- **Machine**: {m['cpus']} x {m['cpu']}, {m['memory_gib']} GiB, Python {m['python']},"
        f" {m['os']}",
        f"- **Parts**: {took}",
    ]
    lines += [f"- **Skipped**: {', '.join(skipped)}"] if skipped else []
    lines += [f"- **Failed**: {', '.join(failed)}"] if failed else []
    return [*lines, "", "![the figures as charts](performance.png)", ""]


def latency(suite: Suite) -> list[str]:
    rows = [
        ("floor: spawn `/bin/true`", fmt(get(suite, "floor.spawn_true.p50_ms"), "ms", 2),
         fmt(get(suite, "floor.spawn_true.p99_ms"), "ms", 2)),
        ("floor: spawn `python3 -c pass`", fmt(get(suite, "floor.spawn_python.p50_ms"), "ms"),
         fmt(get(suite, "floor.spawn_python.p99_ms"), "ms")),
        ("ours: spawn `/bin/true` under the tool supervisor (the subreaper)",
         fmt(get(suite, "floor.spawn_supervised_true.p50_ms"), "ms"),
         fmt(get(suite, "floor.spawn_supervised_true.p99_ms"), "ms")),
        ("floor: loopback HTTP round trip", fmt(get(suite, "floor.http.p50_ms"), "ms", 2),
         fmt(get(suite, "floor.http.p99_ms"), "ms", 2)),
        ("Celery: dispatch (`apply_async` → task body)", fmt(get(suite, "celery.dispatch.p50_ms"),
         "ms"), fmt(get(suite, "celery.dispatch.p99_ms"), "ms")),
        ("Celery: end to end (`apply_async` → result)", fmt(get(suite, "celery.end_to_end.p50_ms"),
         "ms"), fmt(get(suite, "celery.end_to_end.p99_ms"), "ms")),
        ("ours: pickup with MQTT (submit → Claimed)",
         fmt(get(suite, "push.pickup_mqtt.claimed_p50_ms"), "ms"),
         fmt(get(suite, "push.pickup_mqtt.claimed_p99_ms"), "ms")),
        ("ours: submit → the tool's first line, MQTT", fmt(get(suite, "push.pickup_mqtt.p50_ms"),
         "ms"), fmt(get(suite, "push.pickup_mqtt.p99_ms"), "ms")),
        ("ours: submit → Claimed, poll-only (1 s)",
         fmt(get(suite, "push.pickup_poll.claimed_p50_ms"), "ms", 0),
         fmt(get(suite, "push.pickup_poll.claimed_p99_ms"), "ms", 0)),
    ]  # fmt: skip
    stages = ", ".join(
        f"{k} {fmt(get(suite, f'push.pickup_mqtt.{k}_p50_ms'), 'ms')}"
        for k in ("submit", "claim", "validate", "spawn")
    )
    return [
        "## Latency", "",
        *table(("measure", "p50", "p99"), rows), "",
        f"Ours, where the time to the tool goes (p50s): {stages}. The pickup is the moment the",
        "registry records the claim; Celery's dispatch is the moment its task body starts.",
        "",
    ]  # fmt: skip


def throughput(suite: Suite) -> list[str]:
    rows = []
    for i, c in enumerate((1, 4)):
        rows.append((
            f"concurrency {c}",
            fmt(get(suite, f"push.throughput.{i}.jobs_per_s"), "jobs/s"),
            fmt(get(suite, f"celery.throughput.{i}.jobs_per_s"), "jobs/s"),
        ))  # fmt: skip
    spawned = fmt(get(suite, "floor.spawn_true.per_s"), "runs/s")
    rows.append(("floor: `/bin/true` spawned in a loop", "", spawned))
    return [
        "## Throughput", "",
        *table(("", "ours (`run --until-idle`)", "Celery + Redis"), rows), "",
        "Ours: jobs submitted first, then one agent drains them; n / (last Completed - first",
        "Claimed) by the registry's clock. Each of our jobs is a full round of the registry",
        "protocol (claim, phases, downloads, an uploaded output and log, the final status).",
        "",
    ]  # fmt: skip


def agent(suite: Suite) -> list[str]:
    rows = [
        ("overhead per job (Claimed → Completed, over the tool alone)",
         fmt(get(suite, "agent.overhead_wall_ms_per_job"), "ms")),
        ("agent CPU per job", fmt(get(suite, "agent.agent.agent_cpu_ms_per_job"), "ms")),
        ("idle RSS (USS), push on", f"{fmt(get(suite, 'agent.idle.push.rss_mb'), 'MB')} "
         f"({fmt(get(suite, 'agent.idle.push.uss_mb'), 'MB')})"),
        ("idle CPU, push on", fmt(get(suite, "agent.idle.push.cpu_percent"), "% of a core", 2)),
        ("Celery worker idle RSS (USS), concurrency 1: main + 1 pool process",
         f"{fmt(get(suite, 'celery.idle.0.rss_mb'), 'MB')} "
         f"({fmt(get(suite, 'celery.idle.0.uss_mb'), 'MB')})"),
        ("1 GiB output upload (Uploading → Completed)",
         fmt(get(suite, "agent.upload.mib_per_s"), "MiB/s")),
        ("- of which hashing it first / the PUT",
         fmt(get(suite, "agent.upload.before_put_s"), "s", 2) + " / "
         + fmt(get(suite, "agent.upload.put_s"), "s", 2)),
        ("plain file copy, same disk", fmt(get(suite, "agent.upload.copy_mib_per_s"), "MiB/s")),
        ("agent peak RSS during the upload", fmt(get(suite, "agent.upload.peak_rss_mb"), "MB")),
        ("idle registry requests per agent-hour, push",
         fmt(get(suite, "push.idle.push_compressed.per_agent_per_hour"))),
        ("idle registry requests per agent-hour, poll-only (5 s)",
         fmt(get(suite, "push.idle.poll_only.per_agent_per_hour"), "", 0)),
    ]  # fmt: skip
    return ["## The agent", "", *table(("measure", "figure"), rows), ""]


def multipart(suite: Suite) -> list[str]:
    m = "multipart"
    rows = [
        ("floor: sha384 of the file + a plain copy (read, write, fsync)",
         fmt(get(suite, f"{m}.big.floor_s"), "s") + " (" + fmt(get(suite, f"{m}.big.hash_s"), "s")
         + " + " + fmt(get(suite, f"{m}.big.copy_s"), "s") + ")"),
        ("the agent's upload path (hash, parts 4 at once, complete)",
         fmt(get(suite, f"{m}.big.upload_s"), "s") + ", "
         + fmt(get(suite, f"{m}.big.mib_per_s"), "MiB/s")),
        ("- of which the agent hashing / begin, parts, complete",
         fmt(get(suite, f"{m}.big.agent_hash_s"), "s") + " / "
         + fmt(get(suite, f"{m}.big.parts_s"), "s")),
        ("floor / upload", fmt(get(suite, f"{m}.ratio"), "", 2)),
        ("agent peak RSS: the big upload / the small one",
         fmt(get(suite, f"{m}.big.peak_rss_mb"), "MB") + " / "
         + fmt(get(suite, f"{m}.small.peak_rss_mb"), "MB")),
    ]  # fmt: skip
    size = get(suite, f"{m}.big.gib")
    title = f"## Multipart upload ({size:g} GiB)" if size is not None else "## Multipart upload"
    return [title, "", *table(("measure", "figure"), rows), ""]


def downloads(suite: Suite) -> list[str]:
    d = "download"
    gib = fmt(get(suite, f"{d}.gib"), "GiB", 0)
    rows = [
        (f"plain copy of the {gib} file, same disk (floor)",
         fmt(get(suite, f"{d}.copy_mib_per_s"), "MiB/s", 0)),
        (f"{gib} input download, verified and fsynced (agent/registry/download.py)",
         fmt(get(suite, f"{d}.download_mib_per_s"), "MiB/s", 0)),
        ("- floor / ours (aim: at least 0.90)", fmt(get(suite, f"{d}.download_vs_copy"), "", 2)),
        ("sha384 of the same file: the bound of a verified download",
         fmt(get(suite, f"{d}.hash_mib_per_s"), "MiB/s", 0) + ", a ceiling of "
         + fmt(get(suite, f"{d}.ceiling_vs_copy"), "", 2) + " for floor / ours"),
        ("- ours / sha384", fmt(get(suite, f"{d}.download_vs_hash"), "", 2)),
        ("agent peak RSS growth during the download",
         fmt(get(suite, f"{d}.peak_rss_growth_mb"), "MB", 0)),
        ("through the input cache, cold: download, file, copy out",
         fmt(get(suite, f"{d}.cache_cold_s"), "s")),
        ("cache hit: stamp check and a private copy", fmt(get(suite, f"{d}.cache_warm_s"), "s")),
        ("- hit / download", fmt(get(suite, f"{d}.hit_vs_download"), "", 2)),
    ]  # fmt: skip
    return ["## Downloads and the input cache", "", *table(("measure", "figure"), rows), ""]


def pool(suite: Suite) -> list[str]:
    p = "push.pool"
    rows = [
        ("agents / jobs", f"{fmt(get(suite, p + '.agents'))} / {fmt(get(suite, p + '.jobs'))}"),
        ("first submit → all Completed", fmt(get(suite, p + ".wall_s"), "s")),
        ("jobs/s", fmt(get(suite, p + ".jobs_per_s"))),
        ("registry requests per job", fmt(get(suite, p + ".requests_per_job"))),
        ("double runs / never ran", f"{fmt(get(suite, p + '.double_runs'))} / "
         f"{fmt(get(suite, p + '.never_ran'))}"),
    ]  # fmt: skip
    return ["## A pool of agents", "", *table(("measure", "figure"), rows), ""]


def slurm(suite: Suite) -> list[str]:
    rows = [
        ("agent: Running phase", fmt(get(suite, "slurm.agent.total.p50_ms"), "ms", 0),
         fmt(get(suite, "slurm.agent.total.max_ms"), "ms", 0)),
        ("`sbatch --wait`, same batch script", fmt(get(suite, "slurm.wait.total.p50_ms"), "ms", 0),
         fmt(get(suite, "slurm.wait.total.max_ms"), "ms", 0)),
        ("difference, job by job", fmt(get(suite, "slurm.overhead.p50_ms"), "ms", 0),
         fmt(get(suite, "slurm.overhead.max_ms"), "ms", 0)),
    ]  # fmt: skip
    return ["## Slurm", "", *table(("measure", "p50", "max"), rows), ""]


def scaling(suite: Suite) -> list[str]:
    lines = ["## Scaling", ""]
    agents = get(suite, "scale.agents") or []
    lines += table(
        ("agents", "jobs/s", "pickup p50 / p99 (idle pool)", "requests per job",
         "lost claims per job"),
        [(fmt(a.get("agents")), fmt(a.get("jobs_per_s")),
          f"{fmt(a.get('pickup_p50_ms'), 'ms')} / {fmt(a.get('pickup_p99_ms'), 'ms')}",
          fmt(a.get("requests_per_job")), fmt(a.get("lost_claims_per_job"))) for a in agents],
    )  # fmt: skip
    depth = get(suite, "scale.depth") or []
    lines += ["", *table(
        ("pending jobs", "pickup p50 / p99", "submit → Claimed p50", "`available_jobs` p50",
         "its SQL"),
        [(fmt(d.get("depth")),
          f"{fmt(d.get('pickup_p50_ms'), 'ms')} / {fmt(d.get('pickup_p99_ms'), 'ms')}",
          fmt(d.get("claimed_p50_ms"), "ms"), fmt(d.get("available_jobs_p50_ms"), "ms"),
          fmt(d.get("listing_sql_ms"), "ms", 2)) for d in depth],
    ), ""]  # fmt: skip
    lines += [
        "Against agents: one pool with push, the same trivial jobs at each point; the pickup",
        "is a job sent alone to the idle pool (submit to the tool's first line). Against queue",
        "depth: the pending jobs wait for a pool nobody serves; one push agent picks up fresh",
        "jobs of its own past them, and every listing it makes walks the whole queue.", "",
    ]  # fmt: skip
    return lines


def profiled(suite: Suite) -> list[str]:
    """What profiling found where targets were missed, and what was done (written by hand)."""
    return [
        "## Profiled (2026-11-23)", "",
        "Where the targets are missed, and what the profiles say. Before/after figures are from",
        "runs made side by side on this machine, the commits say how to reproduce them.", "",
        "- **Overhead per job, throughput.** py-spy on `benchmarks.agent_bench --per-job-only`",
        "  (benchmarks/README.md, Profiling). Fixed, each measured old/new side by side:",
        "  1. Run records flushed the disk on every statement and each job's tool monitor walked",
        "     all of /proc at once: agent CPU per job 62.4-62.8 -> 54.1-55.0 ms.",
        "  2. The journal fsync'd all 14 of a job's notes (16 % of the agent's busy time); now",
        "     only the 5 made before a lasting registry change wait for the disk (docs/agent.md):",
        "     agent CPU per job 42.8 -> 34.4 ms, overhead 52.7 -> 44.7 ms (medians of 3).",
        "  3. The properties blob went through a temporary directory (4-6 %): now from memory.",
        "  4. The agent's own status was 5.15 of 28.5 registry requests per job; it is now",
        "     reported at most every 0.1 s, latest only: 23.5 requests per job (of which 3 are",
        "     the benchmark's), jobs/s at concurrency 1 30.7 -> 38.8 on a quiet minute.",
        "  Left: a job is a full round of the registry protocol (claim, 4 phase moves, 2",
        "  downloads, per output an upload URL, a PUT and a create for content and properties,",
        "  the final status), about 20 requests through two Python processes on two cores; a",
        "  Celery task is one Redis message each way. 10 ms and Celery's jobs/s are out of reach",
        "  without changing the protocol.",
        "- **Pickup.** Submit -> Claimed was a notice, a listing and a claim. A job.available",
        "  notice now names the job's function and an idle agent serving it claims at once",
        "  (docs/push.md): notice+claim p50 4.7 -> 3.7 ms, submit -> Claimed p50 6.4 -> 5.5 ms.",
        "  Left: the submit itself (~1.7 ms) and the claim's round trip; Celery's dispatch is",
        "  one Redis hop. Queue depth: the listing ran the pool-membership subquery for every",
        "  pending job (EXPLAIN QUERY PLAN); now once per listing: at 10,000 pending, listing",
        "  SQL 27.7 -> 11.0 ms, submit -> Claimed p50 31.2 -> 19.2 ms.",
        "- **Idle RSS.** By import (benchmarks/rss_imports.py): Python with asyncio and ssl",
        "  ~20 MB, aiohttp ~14, pydantic and pydantic-settings ~14, cryptography ~6. Subcommands",
        "  and the HTTP listener now load only when used: RSS 68.7 -> 65.3 MB, USS 43.5 -> 40.0",
        "  MB. Under 40 MB RSS would need a different stack, not lazier imports.",
        "- **Upload.** The whole file is hashed (SHA-384, for the content-addressed upload URL)",
        "  before the PUT starts, then the PUT streams it while the registry hashes and writes it",
        "  on the same two cores: the two passes add up. Measured alone (1 GiB from a",
        "  settled file): copy 3.03 s, hash 1.30 s, PUT 3.23 s, 0.67 x copy; the PUT is as",
        "  fast as the copy (both wait for the disk), the hash before it is what the protocol",
        "  costs. In the suite the PUT takes longer than the copy, right after the tool wrote",
        "  its 1 GiB (not profiled further). Memory stays flat.",
        "",
    ]  # fmt: skip


def reproduce(suite: Suite) -> list[str]:
    return [
        "## Reproduce", "",
        "```sh",
        "benchmarks/run            # everything, about 15 minutes on 2 cores",
        "benchmarks/run --quick    # a smoke run of every part",
        "benchmarks/run --only celery push",
        "```", "",
        "Each part also runs alone (`.venv/bin/python -m benchmarks.<part>_bench [--quick]`);",
        "benchmarks/README.md describes what each measures and why.",
    ]  # fmt: skip


ALL = [latency, throughput, agent, multipart, downloads, pool, scaling, slurm, profiled, reproduce]
