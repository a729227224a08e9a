"""Re-render the cpu evidence's verdicts and tables from ``docs/evidence/cpu/runs.csv`` under
the issue 14 rules (the raw records are not in the repository). Run from the repository root:
``python docs/evidence/cpu/issue14/rerender.py``."""

import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, ".")
from analysis.collect import RunSet  # noqa: E402
from analysis.predictions import load_predictions  # noqa: E402
from analysis.tables import iqm_table, summary_table, time_to_target_table  # noqa: E402
from analysis.verdicts import evaluate  # noqa: E402

OUT = Path("docs/evidence/cpu/issue14")
table = pd.read_csv("docs/evidence/cpu/runs.csv", low_memory=False)
for col in ("ae", "plateau_exited", "drifts", "reached"):
    if col in table:
        table[col] = table[col].map(lambda v: str(v) == "True" if v == v else v)
verdicts, evidence = evaluate(load_predictions(["conf/predictions"]), RunSet(table=table))
verdicts.to_csv(OUT / "predictions.csv", index=False)
evidence.to_csv(OUT / "evidence.csv", index=False)
time_to_target_table(table).to_csv(OUT / "time_to_target.csv", index=False)
summary_table(table).to_csv(OUT / "summary.csv", index=False)
iqm_table(table).to_csv(OUT / "iqm.csv", index=False)
