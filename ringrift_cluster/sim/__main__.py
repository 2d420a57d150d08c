"""``python -m ringrift_cluster.sim``: simulate our SWIM backend at any N.

    python -m ringrift_cluster.sim run --n 10000 --preset lan --loss 0.01      # one scenario
    python -m ringrift_cluster.sim calibrate     # fit on docs/scale/real_calibration.json
    python -m ringrift_cluster.sim predict --n 100   # the held-out N, before it is measured
    python -m ringrift_cluster.sim report        # docs/scale.md, docs/scale.json, plots (make scale-report)
    python -m ringrift_cluster.sim project --sizes 10000   # some of the report's scenarios (reused by report --reuse)
    python -m ringrift_cluster.sim coldstart --sizes 10000  # cold starts to a converged view (reused likewise)
"""

from __future__ import annotations

import argparse
import json
import sys

from .params import Model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ringrift_cluster.sim", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("run", help="one scenario; prints its figures as JSON")
    one.add_argument("--n", type=int, required=True)
    one.add_argument("--preset", default="lan", choices=["lan", "local", "large"])
    one.add_argument("--loss", type=float, default=0.0)
    one.add_argument("--stall", type=float, default=0.0, help="fraction of nodes stalling 1 s every 30 s")
    one.add_argument("--kills", type=int, default=5)
    one.add_argument("--seed", type=int, default=1)
    one.add_argument("--loopback", action="store_true", help="the calibration box's addresses and latency")
    sub.add_parser("calibrate", help="fit on the real calibration runs; prints real vs simulated")
    pred = sub.add_parser("predict", help="simulate the held-out N with the fitted model and file it")
    pred.add_argument("--n", type=int, required=True)
    sub.add_parser("holdout", help="the filed prediction against the held-out real run")
    rep = sub.add_parser("report", help="docs/scale.md, docs/scale.json and the plots")
    rep.add_argument("--sizes", default="1000,3000,10000")
    rep.add_argument("--quick", action="store_true", help="fewer scenarios (a smoke run)")
    rep.add_argument("--reuse", action="store_true", help="take scenarios already in docs/scale/projections.json")
    rep.add_argument("--only-cached", action="store_true", help="render only the scenarios already computed")
    proj = sub.add_parser("project", help="run the report's scenarios for some N into docs/scale/projections.json")
    proj.add_argument("--sizes", required=True)
    proj.add_argument("--presets", default="lan,large")
    proj.add_argument("--loss", type=float, default=None, help="only the scenarios with this loss")
    proj.add_argument("--kills", type=int, default=0, help="kills per scenario (0: the report's)")
    cold = sub.add_parser("coldstart", help="cold starts of the report into docs/scale/coldstart.json")
    cold.add_argument("--sizes", required=True)
    cold.add_argument("--presets", default="lan,large")
    args = parser.parse_args(argv)

    if args.command == "run":
        from .calibrate import FITTED, fitted_model
        from .scenario import Scenario, run
        model = fitted_model() if FITTED.exists() else Model()
        if not args.loopback:
            model = model.with_(latency_s=Model().latency_s, latency_sigma=Model().latency_sigma)
        result = run(Scenario(n=args.n, preset=args.preset, loss=args.loss, stall_fraction=args.stall,
                              kills=args.kills, seed=args.seed, loopback=args.loopback, model=model), progress=True)
        print(json.dumps(result, indent=2))
    elif args.command == "calibrate":
        from .calibrate import calibrate
        out = calibrate(log=lambda s: print(s, file=sys.stderr, flush=True))
        for point in out["points"]:
            print(f"N={point['n']}: error {point['error']}  {point['errors']}")
            print(f"  real {json.dumps({k: point['real'][k] for k in point['errors']})}")
            print(f"  sim  {json.dumps({k: point['sim'][k] for k in point['errors']})}")
        print(f"fitted: report_delay_s={out['model']['report_delay_s']}")
    elif args.command == "predict":
        from .calibrate import PREDICTION, predict
        print(json.dumps(predict(args.n)["sim"], indent=2))
        print(f"filed: {PREDICTION}")
    elif args.command == "holdout":
        from .calibrate import holdout
        print(json.dumps(holdout(), indent=2))
    elif args.command == "report":
        from .report import build
        build([int(x) for x in args.sizes.split(",") if x], quick=args.quick, reuse=args.reuse,
              only_cached=args.only_cached)
    elif args.command == "project":
        from .calibrate import fitted_model
        from .report import plan, project
        from .report import KILLS
        todo = [k for k in plan([int(x) for x in args.sizes.split(",") if x])
                if k[1] in args.presets.split(",") and (args.loss is None or k[2] == args.loss)]
        project(todo, fitted_model(), reuse=True, kills=args.kills or KILLS)
    elif args.command == "coldstart":
        from .report import cold_starts
        cold_starts([int(x) for x in args.sizes.split(",") if x], tuple(args.presets.split(",")), reuse=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
