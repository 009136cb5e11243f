"""``make demo``: register the sample images with the installed ``regcli`` and show the results.

Runs the real command line (the ``regcli`` beside this Python), exactly as a user would:

* ``regcli register`` for BrainMRI_2 (translation), BrainMRI_3 (rotation about the top-left
  corner) and BrainMRI_4 (rigid) onto BrainMRI_1, into ``OUT/BrainMRI_2/`` ...;
* ``regcli compare`` of the course's optimisers on BrainMRI_4, into ``OUT/``;
* ``regcli jointhist`` on the joint-histogram pairs I1/J1 ... (when that command exists);

then prints the recovered parameters beside the truth in ``sample_images/truth.json`` with the
mean displacement error, and where every output went.  Exits 1 if a command fails.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_images"

#: (moving image, transform model, metric, optimiser or None for the default): each is
#: registered onto the fixed image named in truth.json.  BrainMRI_2 uses the course's design-card
#: optimiser (nag); the last is a T2-like image onto the T1 one: two modalities need MI.
REGISTRATIONS = [
    ("BrainMRI_2.png", "translation", "ssd", "nag"),
    ("BrainMRI_3.png", "rotation", "ssd", None),
    ("BrainMRI_4.png", "rigid", "ssd", None),
    ("BrainT2_1.png", "rigid", "mi", None),
]
COMPARE_MOVING = "BrainMRI_4.png"
#: Joint-histogram pairs, as the course names them.
JOINTHIST_PAIRS = [(f"I{k}.png", f"J{k}.png") for k in range(1, 6)]


def regcli_command() -> list[str]:
    """The installed console script beside this Python, else ``python -m regcli``."""
    script = Path(sys.executable).with_name("regcli")
    return [str(script)] if script.exists() else [sys.executable, "-m", "regcli"]


def as_typed(args: list) -> list[str]:
    """The arguments as a user in the project folder types them: paths inside it relative."""
    words = []
    for arg in map(str, args):
        try:
            arg = str(Path(arg).relative_to(ROOT)) if Path(arg).is_absolute() else arg
        except ValueError:
            pass
        words.append(arg)
    return words


def show(args: list) -> str:
    return shlex.join(["regcli", *as_typed(args)])


def run(args: list) -> subprocess.CompletedProcess:
    """Run ``regcli ARGS`` from the project folder, echoing the command; stderr passes through."""
    print(f"$ {show(args)}", flush=True)
    return subprocess.run(
        [*regcli_command(), *as_typed(args)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )


def command_exists(name: str) -> bool:
    probe = subprocess.run(
        [*regcli_command(), name, "--help"], capture_output=True, text=True, check=False
    )
    return probe.returncode == 0


def relative(path) -> str:
    p = Path(path)
    p = p if p.is_absolute() else ROOT / p
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        return str(p)


def register_all(out: Path, truth: dict) -> tuple[list[dict], list[str]]:
    """Run ``regcli register`` per sample; return the parsed JSON results and failures."""
    results, failures = [], []
    for moving, transform, metric, optimizer in REGISTRATIONS:
        pair = truth["pairs"][moving]
        args = [
            *("register", SAMPLES / pair["fixed"], SAMPLES / moving),
            *("--transform", transform, "--metric", metric),
            *(("--opt", optimizer) if optimizer else ()),
            *("-o", out / Path(moving).stem, "--json", "--overwrite", "-q"),
        ]
        done = run(args)
        try:
            report = json.loads(done.stdout)
        except json.JSONDecodeError:
            report = None
        if done.returncode != 0 or report is None:
            failures.append(f"{show(args)} exited with {done.returncode}")
        if report is not None:
            report["moving_name"], report["truth"] = moving, pair
            results.append(report)
    return results, failures


def parameter_table(results: list[dict]) -> str:
    """Recovered vs true parameters, one row per parameter, and the mean displacement error."""
    import numpy as np

    from regcli.transforms import mean_displacement

    lines = [
        f"{'moving image':<16}{'transform':<13}{'parameter':<11}{'true':>10}{'recovered':>12}"
        f"{'error':>10}",
        "-" * 76,
    ]
    for report in results:
        truth = report["truth"]
        first = True
        for name, true_value in truth["params"].items():
            if name == "center":
                continue
            found = report["params"].get(name, float("nan"))
            unit = " deg" if name.endswith("_deg") else " px"
            label = (report["moving_name"], report["transform"]) if first else ("", "")
            lines.append(
                f"{label[0]:<16}{label[1]:<13}{name:<11}{true_value:>10.3f}{found:>12.3f}"
                f"{found - true_value:>+10.3f}{unit}"
            )
            first = False
        error = mean_displacement(
            np.array(report["matrix"]), np.array(truth["matrix"]), report_shape(report)
        )
        status = "converged" if report["converged"] else "NOT converged"
        lines.append(
            f"{'':<29}mean displacement error {error:.3f} px  ({report['metric']}, "
            f"{report['optimizer']}, {report['iterations']} iterations, "
            f"{report['seconds']:.2f} s, {status})"
        )
    return "\n".join(lines)


def report_shape(report: dict) -> tuple[int, int]:
    from regcli.io import read_transform_json

    shape = read_transform_json(ROOT / report["outputs"]["transform"]).get("fixed_shape")
    return tuple(shape) if shape else (256, 256)


def compare_optimizers(out: Path, truth: dict) -> tuple[dict | None, list[str]]:
    pair = truth["pairs"][COMPARE_MOVING]
    plot = out / f"compare_{Path(COMPARE_MOVING).stem}.png"
    args = [
        *("compare", SAMPLES / pair["fixed"], SAMPLES / COMPARE_MOVING),
        *("--transform", pair["transform"], "--metric", "ssd"),
        *("-o", plot, "--json", "--overwrite", "-q"),
    ]
    done = run(args)
    if done.returncode != 0:
        return None, [f"{show(args)} exited with {done.returncode}"]
    return json.loads(done.stdout), []


def compare_table(report: dict, truth: dict) -> str:
    """One row per optimiser, with the mean displacement error against the truth."""
    import numpy as np

    from regcli.transforms import mean_displacement

    truth = truth["pairs"][COMPARE_MOVING]
    lines = [
        f"{'optimizer':<10}{'lr':>7}{'iters':>7}{'final cost':>13}{'seconds':>9}  "
        f"{'converged':<11}{'error (px)':>10}",
        "-" * 67,
    ]
    for row in report["results"]:
        lr = "-" if row["learning_rate"] is None else f"{row['learning_rate']:g}"
        error = mean_displacement(np.array(row["matrix"]), np.array(truth["matrix"]), (256, 256))
        lines.append(
            f"{row['optimizer']:<10}{lr:>7}{row['iterations']:>7}{row['final_cost']:>13.5g}"
            f"{row['seconds']:>9.2f}  {'yes' if row['converged'] else 'no':<11}{error:>10.3f}"
        )
    return "\n".join(lines)


def joint_histograms(out: Path) -> tuple[Path | None, list[str]]:
    """All sample pairs in one ``regcli jointhist`` call: one figure, one check per pair."""
    if not command_exists("jointhist"):
        print("(regcli jointhist is not available: skipped)")
        return None, []
    pairs = [
        SAMPLES / name
        for pair in JOINTHIST_PAIRS
        if all((SAMPLES / name).exists() for name in pair)
        for name in pair
    ]
    plot = out / "jointhist.png"
    args = ["jointhist", *pairs, "-o", plot, "--overwrite"]
    done = run(args)
    print(done.stdout.rstrip())
    if done.returncode != 0:
        return None, [f"{show(args)} exited with {done.returncode}"]
    return plot, []


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("out"), help="output folder")
    options = parser.parse_args(argv)
    out = options.out if options.out.is_absolute() else Path.cwd() / options.out
    out.mkdir(parents=True, exist_ok=True)
    truth = json.loads((SAMPLES / "truth.json").read_text())

    print("== Registering the sample images onto BrainMRI_1.png")
    results, failures = register_all(out, truth)
    print("\n== Optimiser comparison on BrainMRI_4.png (rigid, ssd)")
    comparison, failed = compare_optimizers(out, truth)
    failures += failed
    print("\n== Joint histograms of the sample pairs")
    histograms, failed = joint_histograms(out)
    failures += failed

    print("\n== Recovered vs true transforms (truth: sample_images/truth.json)")
    print(parameter_table(results))
    if comparison is not None:
        print(f"\n== Optimisers on {COMPARE_MOVING} from the identity, default learning rates")
        print(compare_table(comparison, truth))

    print("\n== Outputs")
    listing = [
        (
            relative(report["outputs"]["directory"]) + "/",
            ", ".join(
                Path(report["outputs"][key]).name
                for key in ("aligned", "cost_plot", "overlay", "transform", "itk_transform")
            ),
        )
        for report in results
    ]
    if comparison is not None:
        listing.append((relative(comparison["plot"]), "cost curves of every optimiser"))
    if histograms is not None:
        listing.append((relative(histograms), "joint histograms of the sample pairs (log scale)"))
    width = max((len(where) for where, _ in listing), default=0) + 2
    for where, what in listing:
        print(f"  {where:<{width}}{what}")

    if failures:
        print("\nFAILED:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
