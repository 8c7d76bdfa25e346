"""The `modelzoo` command: one subcommand per pipeline step, plus `run` for all of them."""
from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from pathlib import Path

from modelzoo import __version__
from modelzoo.argtypes import batch_list
from modelzoo.backend_flags import add_backend_flags, backend_options, warn_ignored
from modelzoo.errors import PluginError, UserError
from modelzoo.plugins import DISABLE_ENV, disabled_plugins
from modelzoo.precision import PRECISIONS

log = logging.getLogger("modelzoo")


def main(argv: list[str] | None = None) -> int:
    try:
        code = _main(argv)
        sys.stdout.flush()  # here, so that a reader gone away is met inside the try
        return code
    except BrokenPipeError:
        # The reader closed the pipe (`modelzoo list | head -1`): it has what it wanted. Point stdout
        # at devnull so that the interpreter's last flush does not fail again (Python's signal docs).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _main(argv: list[str] | None) -> int:
    parser = build_parser(_backends_for(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="modelzoo: %(message)s", stream=sys.stderr)
    try:
        code = args.func(args)
    except (UserError, PluginError) as exc:
        if args.debug:
            traceback.print_exc()
        # A plugin's error is one line too; its traceback is for the plugin's author, on asking.
        hint = "" if args.debug or isinstance(exc, UserError) else " (pass --debug for the plugin's traceback)"
        print(f"error: {exc}{hint}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return code or 0


class OneLineParser(argparse.ArgumentParser):
    """An argument error is one line (`modelzoo run: error: argument --bs: ...`) and exit 2: the usage
    block it would print hides the line that matters; `--help` still shows it."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}; see '{self.prog} --help'\n")


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    return _int_at_least(text, 1)


def non_negative_int(text: str) -> int:
    """An argparse type: a whole number of at least 0."""
    return _int_at_least(text, 0)


def _int_at_least(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
    return value


def _backends_for(argv: list[str]) -> list:
    """The registered backends, whose own flags `run`, `bench` and `compare` take; none for others,
    so that they (and `modelzoo --help`) load no plugin before they need one. --disable-plugin is
    honoured first, through the environment, so that subprocesses (zoo CI probes) honour it too."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--disable-plugin", action="append", default=[])
    pre.add_argument("command", nargs="?")
    known, _ = pre.parse_known_args(argv)
    if known.disable_plugin:
        os.environ[DISABLE_ENV] = ",".join([*disabled_plugins(), *known.disable_plugin])
    if known.command not in ("run", "bench", "compare"):
        return []
    from modelzoo.plugins import get_plugin_manager
    from modelzoo.registry import Registry

    try:  # a broken plugin is the command's own error to report, once the arguments are parsed
        return list(Registry(get_plugin_manager(broken=[])).backends.values())
    except (UserError, PluginError):
        return []


def build_parser(backends: list | None = None) -> argparse.ArgumentParser:
    """The command line; `run`, `bench` and `compare` also take each of `backends`' own flags."""
    common = OneLineParser(add_help=False)
    common.add_argument("--quiet", action="store_true", help="no progress bars or info lines")
    common.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    common.add_argument("--disable-plugin", action="append", default=[], metavar="NAME",
                        help="do not load this plugin (repeatable; also $MODELZOO_DISABLE_PLUGINS=a,b)")

    parser = OneLineParser(prog="modelzoo", parents=[common],
                           description="Run, evaluate and convert ModelZoo models.")
    parser.add_argument("--version", action="version", version=f"modelzoo {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, func, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help, description=help)
        p.set_defaults(func=func)
        return p

    command("list", cmd_list, "list installed models and backends, with availability")

    p = command("info", cmd_info, "show a model's manifest")
    p.add_argument("model")

    p = command("run", cmd_run, "evaluate a model end to end: export, compile, infer, score, report")
    _run_args(p)
    add_backend_flags(p, backends or [], "run")

    _preprocess_args(command("preprocess", cmd_preprocess, "write one <key>.bin per sample (per input), "
                                                           "as ModelZoo's preprocess script does"))
    _export_args(command("export", cmd_export, "export the model to ONNX (opset from the manifest)"))
    _postprocess_args(command("postprocess", cmd_postprocess, "score ais_bench result files "
                                                              "(<stem>_<output>.txt|bin|npy) with the model's task"))

    p = command("bench", cmd_bench, "measure pure-inference throughput per backend and batch size")
    _bench_args(p)
    add_backend_flags(p, backends or [], "bench")

    p = command("ci", cmd_ci, "discover every plugin (plugin.toml under PATHs, installed entry points) and "
                              "check each model: manifest, hook contract, export + parity, smoke inference")
    _ci_args(p)

    p = command("compare", cmd_compare, "find the first op where a reduced precision departs from "
                                        "the fp32 ONNX, and (--fix) the ops to keep in higher precision")
    _compare_args(p)
    add_backend_flags(p, backends or [], "compare")

    p = command("fetch", cmd_fetch, "download the model's weights from the manifest's URL")
    p.add_argument("model")

    _source_args(command("source", cmd_source, "check out upstream's code at the manifest's commit and apply "
                                               "its patches (for --model-source upstream)"))
    return parser


def _preprocess_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model")
    p.add_argument("--data", type=Path, required=True, help="dataset dir, in the model's task layout")
    p.add_argument("--save-bin", type=Path, required=True, help="output dir for the .bin files")
    p.add_argument("--skip-invalid", action="store_true", help="skip unreadable images")
    p.add_argument("--workers", type=non_negative_int,
                   help="preprocessing workers (processes, or threads where the plugin says its preprocess "
                        "releases the GIL)")


def _export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model")
    _weights_arg(p)
    p.add_argument("--output", type=Path, required=True, help="ONNX file to write")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--bs", type=positive_int, help="static batch size")
    group.add_argument("--dynamic", action="store_true", help="dynamic batch axis (the default)")
    p.add_argument("--no-simplify", action="store_true", help="skip onnxsim")
    p.add_argument("--variant", default="standard", help="export variant, e.g. ascend")
    _parity_arg(p)
    _model_source_args(p)
    p.add_argument("--cache-dir", type=Path, help="artifact cache (default ./modelzoo-out/cache)")


def _postprocess_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model")
    p.add_argument("--result-path", type=Path, required=True, help="ais_bench output dir")
    p.add_argument("--data", type=Path, help="the dataset the results are of (its targets are used)")
    p.add_argument("--labels", type=Path, help="label file (classification: enough without --data)")
    p.add_argument("--metas", type=Path, help="the metas.jsonl 'modelzoo preprocess' wrote beside the .bin "
                                              "files (for a task whose postprocess takes the samples' metas)")
    p.add_argument("--output", type=Path, help="also write the scores to this JSON file")


def _source_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model")
    p.add_argument("--from", dest="from_dir", type=Path,
                   help="copy this local checkout instead of cloning (offline)")
    p.add_argument("--dest", type=Path, help="where to put it (default $MODELZOO_HOME/sources/MODEL)")


def _run_args(p: argparse.ArgumentParser) -> None:
    """`modelzoo run`: what to run, where, on which backend and engine."""
    p.add_argument("model")
    p.add_argument("--bs", "--batchsize", dest="bs", type=positive_int, default=1, help="batch size (default 1)")
    p.add_argument("--backend", default="auto", help="auto (default), onnxruntime, torch, ...")
    _weights_arg(p)
    p.add_argument("--data", type=Path, help="dataset dir in the model's task layout (classification: "
                                             "DIR/images + DIR/val_label.txt, or a flat image dir with "
                                             "--labels; default: the demo set)")
    p.add_argument("--labels", type=Path, help="target file (classification: '<image file name> <class>' lines)")
    p.add_argument("--limit", type=positive_int, help="evaluate only the first N samples")
    p.add_argument("--output", type=Path, help="output dir (default ./modelzoo-out/MODEL/BACKEND-bsN-DATA[-firstN], "
                                               "DATA: demo, or the data folder's name and a digest of its path)")
    p.add_argument("--cache-dir", type=Path, help="artifact cache (default ./modelzoo-out/cache)")
    p.add_argument("--skip-invalid", action="store_true",
                   help="skip unreadable images (listed in report.json) instead of stopping")
    p.add_argument("--workers", type=non_negative_int,
                   help="preprocessing workers: processes, or threads where the plugin says its preprocess "
                        "releases the GIL (default: cores, at most 4; 0 = in the main thread)")
    p.add_argument("--no-simplify", action="store_true", help="skip onnxsim")
    _parity_arg(p)
    _model_source_args(p)
    _precision_args(p)
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="continue an interrupted run in --output (also the default on a rerun)")
    again.add_argument("--fresh", action="store_true", help="discard earlier results in --output")
    cluster = _engine_args(p)
    cluster.add_argument("--actors-per-node", type=positive_int, metavar="N",
                         help="sessions per CPU node (default 1; Ascend nodes get one per NPU)")
    cluster.add_argument("--ship-data", action="store_true",
                         help="send the images to the nodes as bytes (default: read from --data, "
                              "which every node must see at the same path)")


def _bench_args(p: argparse.ArgumentParser) -> None:
    """`modelzoo bench`: backends, batch sizes, precisions and how long to measure."""
    p.add_argument("model")
    p.add_argument("--bs", "--batchsize", dest="bs", type=batch_list, default=(1, 4, 8, 16, 32, 64),
                   metavar="1,4,8", help="batch sizes (default 1,4,8,16,32,64)")
    p.add_argument("--backend", default="auto", help="backend(s), comma-separated (default auto)")
    p.add_argument("--compare", action="store_true", help="add the torch eager reference")
    p.add_argument("--precision", default="auto", metavar="auto|fp32,bf16,int8|all",
                   help="precision(s), comma-separated, or all that each backend runs here (default auto)")
    p.add_argument("--calibration", type=positive_int, default=300, metavar="N",
                   help="int8: calibration images (default 300)")
    p.add_argument("--calibration-data", type=Path, metavar="DIR",
                   help="int8: calibrate on these images (default: the demo set)")
    p.add_argument("--shape", action="append", default=[], metavar="AXIS=SIZE[,SIZE...]",
                   help="sizes of a dynamic axis to measure, one row each (repeat per axis; default: "
                        "each axis's example)")
    p.add_argument("--warmup", type=non_negative_int, default=2, help="untimed iterations first (default 2)")
    p.add_argument("--iters", "--loop", dest="iters", type=positive_int, default=10,
                   help="timed iterations (default 10)")
    _weights_arg(p)
    p.add_argument("--output", type=Path, default=Path("modelzoo-out/bench"),
                   help="where bench.json, bench.md and bench.png go (default ./modelzoo-out/bench)")
    p.add_argument("--cache-dir", type=Path, help="artifact cache (default ./modelzoo-out/cache)")
    _parity_arg(p)


def _compare_args(p: argparse.ArgumentParser) -> None:
    """`modelzoo compare`: the backend and precision to look inside, the inputs, the fix search."""
    p.add_argument("model")
    p.add_argument("--backend", default="auto", help="onnxruntime (int8), openvino (bf16/fp16/int8), ascend (fp16)")
    p.add_argument("--precision", choices=PRECISIONS, default="auto", help="the reduced precision (default auto)")
    p.add_argument("--data", type=Path, help="dataset dir (default: the demo set)")
    _weights_arg(p)
    p.add_argument("--bs", "--batchsize", dest="bs", type=positive_int, default=1, help="batch size (default 1)")
    p.add_argument("--samples", type=non_negative_int, default=16, metavar="N",
                   help="real samples besides the parity inputs (default 16)")
    p.add_argument("--calibration", type=positive_int, default=300, metavar="N",
                   help="int8: calibration samples")
    p.add_argument("--calibration-data", type=Path, metavar="DIR", help="int8: calibrate on these instead")
    p.add_argument("--threshold", type=float, default=0.99, help="cosine below which an op diverges (0.99)")
    p.add_argument("--fix", action="store_true", help="search for ops to keep at higher precision")
    p.add_argument("--target-cosine", type=float, default=0.999, help="--fix: output cosine to reach (0.999)")
    p.add_argument("--fix-runs", type=positive_int, default=60,
                   help="--fix: most models to run (each a quantisation or compile); past it the fix found so far "
                        "is kept, marked not minimal (60)")
    p.add_argument("--output", type=Path, help="default ./modelzoo-out/MODEL/compare-BACKEND-PRECISION")
    p.add_argument("--cache-dir", type=Path, help="artifact cache (default ./modelzoo-out/cache)")


def _ci_args(p: argparse.ArgumentParser) -> None:
    """`modelzoo ci`: where to look for plugins, where results go, measured runs, engine."""
    p.add_argument("paths", nargs="*", type=Path, default=[Path(".")], metavar="PATH",
                   help="trees to search for plugin.toml (default .)")
    p.add_argument("--output", type=Path, default=Path("modelzoo-out/ci"),
                   help="where junit.xml, ci.json and MODEL/modelzoo_level.txt go (default ./modelzoo-out/ci)")
    p.add_argument("--cache-dir", type=Path, help="artifact cache (default OUTPUT/cache)")
    p.add_argument("--measured", type=Path, action="append", default=[], metavar="REPORT",
                   help="report.json of a full run (real weights, whole data set): decides the model's "
                        "PrecisionStatus against the manifest's expected metrics and tolerances")
    _engine_args(p)
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="precision of the smoke runs (default auto)")


def _precision_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="auto (default): the backend's native fast precision here (OpenVINO: bf16 on CPUs "
                        "with avx512_bf16/amx, else fp32; Ascend: fp16); fp32 exact; int8 quantised")
    p.add_argument("--calibration", type=positive_int, default=300, metavar="N",
                   help="int8: calibration images taken from --data (default 300)")
    p.add_argument("--calibration-data", type=Path, metavar="DIR",
                   help="int8: calibrate on these images instead, never the ones being scored")
    p.add_argument("--keep-fp32", type=_op_list, default=(), metavar="OP[,OP]",
                   help="ONNX ops (as compare.json names them) to keep at higher precision: atc --keep_dtype "
                        "on ascend, left unquantised in int8; added to the manifest's [atc] keep_dtype / "
                        "[int8] ignored")
    p.add_argument("--agreement-samples", type=non_negative_int, default=64, metavar="N",
                   help="reduced precisions: compare the first N images with fp32 torch (default 64, 0: off)")


def _parity_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-parity-check", dest="parity_check", action="store_false",
                   help="go on when torch and the ONNX export differ beyond the manifest's [[outputs]] "
                        "tolerances (the report says the check was not enforced)")


def _model_source_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-source", choices=("builtin", "upstream"), default="builtin",
                   help="upstream: build the model from upstream's code prepared by 'modelzoo source'")
    p.add_argument("--source-dir", type=Path, help="the checkout for --model-source upstream "
                                                   "(default $MODELZOO_HOME/sources/MODEL)")


def _engine_args(p: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    group = p.add_argument_group("cluster options (pip install 'modelzoo-lvvit[ray]')")
    group.add_argument("--engine", choices=("local", "ray"), default="local",
                       help="ray: spread the work over a Ray cluster (default local)")
    group.add_argument("--address", help="the Ray cluster, e.g. 10.0.0.1:6379 (default: RAY_ADDRESS, "
                                         "else a cluster started on this host, else a new local one)")
    return group


def _op_list(text: str) -> tuple[str, ...]:
    ops = tuple(part.strip() for part in text.split(",") if part.strip())
    if not ops:
        raise argparse.ArgumentTypeError(f"expected ONNX op names like /blocks.0/Gemm,/head/Gemm, got {text!r}")
    return ops


def _weights_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", type=Path, help="checkpoint file (default: the manifest's file in "
                                                "$MODELZOO_HOME/weights, else seeded random weights)")


def _registry(args, warn: bool = True):
    """Every plugin that loads and registers; a broken one is left out with one warning line
    (its traceback with --debug), so that it affects only its own models."""
    from modelzoo.plugins import get_plugin_manager
    from modelzoo.registry import Registry

    broken: list[PluginError] = []
    registry = Registry(get_plugin_manager(broken=broken), broken)
    for error in broken if warn else ():
        if args.debug:
            traceback.print_exception(error)
        print(f"warning: plugin '{error.plugin}' is broken, its models are left out: {error}", file=sys.stderr)
    return registry


def _tensor_extras(t) -> str:
    """An input's drawing range, an output's parity check, for `modelzoo info`."""
    if t.range:
        return f", range [{t.range[0]}, {t.range[1]})"
    if t.check is None:
        return ""
    keys = {"scores": ("atol", "min_cosine", "min_agreement", "class_axis"), "values": ("atol", "min_cosine"),
            "labels": ("min_equal",)}[t.check.compare]
    return f", compare {t.check.compare} ({', '.join(f'{k} {getattr(t.check, k):g}' for k in keys)})"


def cmd_compare(args) -> None:
    from modelzoo.compare.command import CompareOptions, compare
    from modelzoo.compare.report import describe, fix_text

    opts = CompareOptions(model=args.model, backend=args.backend, precision=args.precision, data=args.data,
                          weights=args.weights, batch_size=args.bs, calibration=args.calibration,
                          calibration_data=args.calibration_data, cache_dir=args.cache_dir,
                          samples=args.samples, output=args.output, threshold=args.threshold, fix=args.fix,
                          target_cosine=args.target_cosine, fix_runs=args.fix_runs,
                          backend_options=backend_options(args)[0],
                          quiet=args.quiet)
    result = compare(opts, _registry(args))
    first = result["first_divergent"]
    print(f"{result['observable']} of {result['tensors']} tensors observable on {result['backend']} "
          f"{result['precision']}; " + (f"first divergent op: {first['op']} ({first['type']}), cosine "
                                        f"{first['cosine']}, max|diff| {first['max_abs']}, inf {first['inf']}, "
                                        f"nan {first['nan']}" if first else "no op diverges"))
    print(f"output agreement: {describe(result['agreement'])}, max|diff| {result['agreement']['max_abs']}")
    if "fix" in result:
        print(f"fix ({result['fix_mechanism']}): {fix_text(result['fix'])}"
              f"{'' if result['fix_minimal'] is not False else ' (not minimal: --fix-runs spent)'}"
              f"; output agreement before: {describe(result['agreement_before'])}; "
              f"after: {describe(result['agreement_after'])} (measured)")
    print(f"wrote {result['output']}/compare.json, compare.md, compare.png")


def cmd_list(args) -> None:
    from modelzoo.precision import runnable_here

    registry = _registry(args, warn=False)  # the listing names the broken plugins itself
    print("models:")
    for name, entry in sorted(registry.models.items()):
        print(f"  {name:14} {entry.manifest.summary}")
    print("backends (auto picks the available one listed first):")
    for backend in sorted(registry.backends.values(), key=lambda b: -b.priority):
        reason = backend.unavailable_reason()
        state = (f"available; precisions here: {', '.join(runnable_here(backend))}" if reason is None
                 else f"unavailable: {reason}")
        print(f"  {backend.name:14} {backend.description} — {state}")
    if registry.broken:
        print("plugins not loaded (broken):")
        for error in registry.broken:
            print(f"  {error.plugin:14} {error}")


def cmd_info(args) -> None:
    m = _registry(args).model(args.model).manifest
    print(f"{m.name}: {m.summary}")
    print(f"  paper       {m.paper or 'n/a'}")
    print(f"  manifest    {m.path}")
    print("  task        " + ", ".join(f"{k} {v}" for k, v in m.task.items()))
    if m.source:
        print(f"  upstream    {m.source['repo']} @ {m.source['commit']}, patches: "
              f"{', '.join(m.source.get('patches', [])) or 'none'}")
    if m.weights:
        print(f"  weights     {m.weights['file']}  <{m.weights['url']}>")
    for kind, tensors in (("input", m.inputs), ("output", m.outputs)):
        for t in tensors:
            shape = ",".join(str(d) for d in t.shape)
            print(f"  {kind:11} {t.name} {t.dtype} {t.layout} [{shape}]{_tensor_extras(t)}")
    if m.preprocess:
        print("  preprocess  " + ", ".join(f"{k} {v}" for k, v in m.preprocess.items()))
    flags = " ".join(m.atc.get("extra_flags", []))
    print(f"  atc         --framework={m.atc['framework']} --input_format={m.atc['input_format']} {flags}".rstrip())
    exp = m.expected
    for metric, value in exp["metrics"].items():
        tolerance = exp["tolerance"].get(metric)
        lower = metric in exp["lower_is_better"]
        print(f"  expected    {metric} {value}" + (f" ± {tolerance}" if tolerance is not None else "")
              + (" (lower is better)" if lower else "")
              + (f" ({exp['source']})" if exp["source"] else ""))
    for perf in exp.get("perf", []):
        table = ", ".join(f"bs{bs} {fps}" for bs, fps in perf["fps"].items())
        label = "reference" if perf["reference"] else "measured"
        print(f"  perf        {perf['chip']} ({label}): {table} fps")
    print("  status      " + " ".join(f"{k}:{v}" for k, v in m.status.items())
          + " (declared by plugin.toml, not measured; `modelzoo ci --measured REPORT.json` measures them)")


def cmd_run(args) -> None:
    from modelzoo.pipeline import RunOptions, run
    from modelzoo.report import print_report

    options, given = backend_options(args)
    report = run(_registry(args), RunOptions(
        model=args.model, backend=args.backend, batch_size=args.bs, weights=args.weights,
        data=args.data, labels=args.labels, limit=args.limit, output=args.output,
        cache_dir=args.cache_dir, skip_invalid=args.skip_invalid, workers=args.workers,
        simplify=not args.no_simplify, quiet=args.quiet, backend_options=options, backend_flags=given,
        precision=args.precision, calibration=args.calibration,
        calibration_data=args.calibration_data, agreement_samples=args.agreement_samples,
        fresh=args.fresh, resume=args.resume, parity_check=args.parity_check,
        model_source=args.model_source, source_dir=args.source_dir, engine=args.engine,
        address=args.address, actors_per_node=args.actors_per_node, ship_data=args.ship_data,
        keep_fp32=args.keep_fp32))
    print_report(report)


def cmd_preprocess(args) -> None:
    from modelzoo.steps import preprocess_to_bin

    count = preprocess_to_bin(_registry(args).model(args.model), args.data, args.save_bin,
                              args.workers, args.skip_invalid, quiet=args.quiet)
    print(f"wrote {count} .bin files to {args.save_bin}")


def cmd_export(args) -> None:
    from modelzoo.parity import describe, describe_check
    from modelzoo.steps import export

    from modelzoo.source import upstream_checkout

    entry = _registry(args).model(args.model)
    upstream = upstream_checkout(entry, args.source_dir) if args.model_source == "upstream" else None
    path, parity = export(entry, args.weights, args.output, args.bs, args.variant, not args.no_simplify,
                          args.cache_dir, args.quiet, upstream, args.parity_check)
    print(f"wrote {path}")
    print(f"parity torch vs ONNX Runtime: {describe(parity, cosine_digits=8)}{describe_check(parity)}")


def cmd_postprocess(args) -> None:
    from modelzoo.report import metric_label, metric_value
    from modelzoo.steps import postprocess

    scores = postprocess(_registry(args).model(args.model), args.result_path, args.data, args.labels, args.output,
                         args.metas)
    for name, value in scores.items():
        print(f"{metric_label(name)}: {metric_value(value)}")


def cmd_bench(args) -> None:
    from modelzoo.backends.base import BackendSettings
    from modelzoo.bench import bench, markdown
    from modelzoo.calibration import choose_calibration
    from modelzoo.pipeline import DEFAULT_OUTPUT_ROOT, load_dataset
    from modelzoo.precision import parse_precisions

    registry = _registry(args)
    precisions = None if args.precision == "all" else parse_precisions(args.precision)
    # auto is resolved per precision: the best available backend that runs the first one asked for
    backends = [registry.backend(name, (precisions or ("auto",))[0]).name for name in args.backend.split(",")]
    if args.compare and "torch" not in backends:
        backends.append("torch")
    calibration = None
    if precisions is None or "int8" in precisions:
        entry = registry.model(args.model)
        if args.calibration_data is not None or entry.demo_data is not None:
            demo = load_dataset(entry, None, None) if args.calibration_data is None else None
            calibration = choose_calibration(entry, args.calibration, args.calibration_data, demo)
    options, given = backend_options(args)
    warn_ignored(given, backends)
    settings = BackendSettings(workdir=args.output, calibration=calibration)
    result = bench(registry, args.model, backends, list(args.bs), args.warmup, args.iters, args.output,
                   args.cache_dir or DEFAULT_OUTPUT_ROOT / "cache", args.weights, settings, precisions,
                   args.parity_check, args.shape, options)
    print(markdown(result))
    print(f"wrote {args.output / 'bench.json'}, bench.md and bench.png")


def cmd_ci(args) -> int:
    from modelzoo.zoo_ci import run_ci

    return run_ci(args.paths, args.output, quiet=args.quiet, cache_dir=args.cache_dir, measured=args.measured,
                  engine=args.engine, address=args.address, precision=args.precision)


def cmd_fetch(args) -> None:
    from modelzoo.weights import fetch_weights

    path = fetch_weights(_registry(args).model(args.model).manifest)
    print(f"weights at {path}")


def cmd_source(args) -> None:
    from modelzoo.source import default_source_dir, prepare_source

    entry = _registry(args).model(args.model)
    path = prepare_source(entry.manifest, args.dest or default_source_dir(entry.name), args.from_dir)
    print(f"upstream source ready at {path}")


if __name__ == "__main__":
    sys.exit(main())
