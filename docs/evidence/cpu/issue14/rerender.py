import sys, pandas as pd, numpy as np
sys.path.insert(0, ".")
from analysis.collect import RunSet
from analysis.predictions import load_predictions
from analysis.verdicts import evaluate
from analysis.tables import summary_table, time_to_target_table, iqm_table
out = "docs/evidence/cpu/issue14/"
t = pd.read_csv("docs/evidence/cpu/runs.csv", low_memory=False)
for c in ("ae","plateau_exited","drifts","reached"):
    if c in t: t[c] = t[c].map(lambda v: str(v) == "True" if v == v else v)
rs = RunSet(table=t)
v, e = evaluate(load_predictions(["conf/predictions"]), rs)
v.to_csv(out + "predictions.csv", index=False); e.to_csv(out + "evidence.csv", index=False)
time_to_target_table(t).to_csv(out + "time_to_target.csv", index=False)
summary_table(t).to_csv(out + "summary.csv", index=False)
iqm_table(t).to_csv(out + "iqm.csv", index=False)










