from w2s import io
from w2s.evaluation.run_metrics import ALL_ROLES, REFERENCE_ROLE, evaluate
from w2s.runlog import log_to

log_to(snakemake.log[0])
evaluate(
    run=snakemake.wildcards.run,
    predictions={k: v for k, v in snakemake.input.items() if k in ("self", *ALL_ROLES, REFERENCE_ROLE)},
    test_path=snakemake.input.test,
    bootstrap_samples=snakemake.params.bootstrap_samples,
    seed=int(snakemake.wildcards.seed),
    out_path=snakemake.output[0],
    context=snakemake.params.context,
    label_balance=io.read_json(snakemake.input.label_balance),
    truncation=io.read_json(snakemake.input.truncation) if "truncation" in snakemake.input.keys() else None,
    weak_labels_path=snakemake.input.get("weak_labels"),
    ood_test_path=snakemake.input.get("ood_test_labels"),
)
