"""The Markdown table of a GPU pass, from its JSON (benchmarks/gpu_pass.py). Numbers are
rounded here only; the JSON keeps them whole."""

from __future__ import annotations

import math

PART_TITLES = {
    "peaks": "Matmul peaks, measured in this run",
    "throughput": "Throughput: bench's throughput cells (suites/throughput.toml, then ResNet-18)",
    "fgsm": "FGSM ε-sweep: bench vs torchattacks per ε (naive) vs the plain loop",
    "pgd": "PGD ε-sweep: bench vs torchattacks per ε (naive) vs the plain loop",
    "autoattack": "AutoAttack (standard): bench vs torchattacks.AutoAttack called directly",
    "gan": "DCGAN training (suites/gan-digits.toml's recipe) without and with AMP",
    "cuda-tests": "CUDA correctness tests (tests/test_cuda.py)",
}


def render(result: dict) -> str:
    lines = header(result)
    for name, section in result["parts"].items():
        lines += ["", f"## {PART_TITLES.get(name, name)}", "", status_line(section), ""]
        body = RENDERERS.get(name)
        if body is not None and section.get("status") not in ("skipped",):
            lines += body(section)
    return "\n".join(lines) + "\n"


def header(result: dict) -> list[str]:
    prov, dev = result["provenance"], result["provenance"]["device"]
    git = prov["git"]
    commit = git.get("commit") or result.get("commit_given") or "unknown"
    dirty = " (uncommitted changes)" if git.get("dirty") else ""
    return [
        f"# bench GPU pass: {dev.get('device_name')}",
        "",
        f"- status: **{result['status']}**; {result['elapsed_s']:.0f} s of a "
        f"{result['budget_s']:g} s budget; sizes `{result['sizes']['name']}`",
        f"- device `{dev.get('device')}` ({dev.get('device_name')}, capability "
        f"{dev.get('device_capability', '-')}); torch {prov['versions'].get('torch')}, CUDA "
        f"{dev.get('cuda_version')}, cuDNN {dev.get('cudnn_version', '-')}",
        f"- commit {commit}{dirty}; started {result['started_utc']}",
        f"- command: `{result['command']}`",
    ]


def status_line(section: dict) -> str:
    out = f"status: **{section.get('status')}**"
    if section.get("seconds") is not None:
        out += f" ({section['seconds']:.1f} s)"
    if section.get("reason"):
        out += f"; {section['reason']}"
    for item in section.get("skipped", []):
        out += f"; {item}"
    return out


def fmt(x, spec: str = ".3g") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return format(x, spec)


def peaks_body(section: dict) -> list[str]:
    lines = ["| precision | measured TFLOP/s | datasheet TFLOP/s | how |", "|---|---|---|---|"]
    for r in section.get("rows", []):
        lines.append(f"| {r['precision']} | {fmt(r['tflops'], '.1f')} | "
                     f"{fmt(r['datasheet_tflops'], '.1f')} | {r['source']} |")
    lines.append("")
    lines.append("fp32 is PyTorch's default matmul (no TF32); cuDNN convolutions use TF32 by "
                 "default, so fp32 convnet MFU against the fp32 peak can exceed 1.")
    return lines


def throughput_body(section: dict) -> list[str]:
    lines = ["| group | workload | model | batch | precision | channels_last | images/s "
             "median [IQR] | ms/step | MFU (measured peak) | MFU (datasheet) | peak MiB |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in section.get("rows", []):
        head = (f"| {r['group']} | {r['workload']} | {r['target']} | {r['batch_size']} | "
                f"{r['precision']} | {r['channels_last']} | ")
        if r["skipped"]:
            lines.append(head + f"skipped: {r['skip_reason']} | | | | |")
            continue
        mem = r["peak_memory_bytes"] / 2**20 if r["peak_memory_bytes"] else None
        lines.append(head + f"{fmt(r['images_per_s'], ',.0f')} [{fmt(r['images_per_s_q1'], ',.0f')}"
                     f", {fmt(r['images_per_s_q3'], ',.0f')}] | {fmt(r['median_s'] * 1e3, '.3f')} | "
                     f"{fmt(r['mfu'], '.3f')} | {fmt(r.get('mfu_datasheet'), '.3f')} | "
                     f"{fmt(mem, '.0f')} |")
    lines.append("")
    lines.append("Median and quartiles over the repeats, timed by CUDA events (perf_counter on "
                 "the CPU); MFU = counted FLOPs per second over the peak of the row's precision.")
    return lines


def contenders_table(entry: dict, baseline: str) -> list[str]:
    lines = [f"| contender | median s [IQR] | speed-up vs {baseline} [IQR] |", "|---|---|---|"]
    for name, c in entry["contenders"].items():
        ratio = c.get(f"speedup_vs_{baseline}")
        speed = ("1 (baseline)" if name == baseline else "-" if ratio is None else
                 f"{ratio['median_ratio']:.2f}× [{ratio['ratio_q1']:.2f}, {ratio['ratio_q3']:.2f}]")
        lines.append(f"| {name} | {fmt(c['median_s'], '.4f')} [{fmt(c['q1_s'], '.4f')}, "
                     f"{fmt(c['q3_s'], '.4f')}] | {speed} |")
    return lines


def attack_body(section: dict) -> list[str]:
    lines: list[str] = []
    for e in section.get("shapes", []):
        steps = f", {e['steps']} steps" if e.get("steps") else ""
        lines += ["", f"### {e['title']}: batch {e['batch']}{steps}, {e['rounds']} rounds "
                      f"({'; '.join(e['notes'])})", ""]
        lines += contenders_table(e, "naive")
        lines += ["", "| contender | accuracy per ε (" + ", ".join(f"{x:g}" for x in e["epsilons"])
                  + ") | vs naive |", "|---|---|---|"]
        for name, acc in e["accuracy"].items():
            check = e["vs_naive"].get(name)
            verdict = "-" if check is None else (
                "identical per example" if check["identical"] else
                f"{check['differing_pairs']} (example, ε) pairs differ, counts within "
                f"{check['max_count_difference']}: {'AGREE' if check['agree'] else 'DISAGREE'}")
            lines.append(f"| {name} | {' '.join(f'{a:.4f}' for a in acc)} | {verdict} |")
    return lines


def autoattack_body(section: dict) -> list[str]:
    lines: list[str] = []
    for r in section.get("rows", []):
        robust = ", ".join(f"{k} {v:.4f}" for k, v in r["robust_acc"].items())
        lines += ["", f"{r['model']}, ε = {r['epsilon']:g}, {r['images']} images, batch "
                      f"{r['batch']}, {r['rounds']} rounds; clean acc {r['clean_acc']:.4f}, robust "
                      f"acc {robust}; predictions identical: **{r['identical']}**", ""]
        lines += contenders_table(r, "torchattacks")
    return lines


def gan_body(section: dict) -> list[str]:
    lines = ["| amp asked | amp used | steps | FID (step 0 → end) | real-data floor FID | "
             "train images/s | train s | AMP skipped steps | status | note |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in section.get("rows", []):
        lines.append(f"| {r['amp_asked']} | {r.get('amp', '-')} | {r['steps']} | "
                     f"{fmt(r.get('fid_step0'))} → {fmt(r.get('fid'))} | "
                     f"{fmt(r.get('real_floor_fid'))} | {fmt(r.get('train_images_per_s'), ',.0f')} | "
                     f"{fmt(r.get('seconds'), '.1f')} | {r.get('amp_skipped_steps', '-')} | "
                     f"{r['status']}{': ' + r['reason'] if r.get('reason') else ''} | "
                     f"{r.get('note') or ''} |")
    if section.get("rows"):
        lines += ["", f"FID under bench's domain extractor ({section['rows'][0].get('extractor')}"
                      "): comparable only between rows with the same extractor."]
    return lines


def cuda_tests_body(section: dict) -> list[str]:
    lines = [f"`{section.get('command', '')}`: {section.get('summary', '')}", "",
             "| test | outcome | message |", "|---|---|---|"]
    for t in section.get("tests", []):
        lines.append(f"| {t['name']} | {t['outcome']} | {t['message'].splitlines()[0] if t['message'] else ''} |")
    return lines


RENDERERS = {"peaks": peaks_body, "throughput": throughput_body, "fgsm": attack_body,
             "pgd": attack_body, "autoattack": autoattack_body, "gan": gan_body,
             "cuda-tests": cuda_tests_body}
