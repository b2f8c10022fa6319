from w2s.data.supervisors import Simulation, write_simulated
from w2s.runlog import log_to

log_to(snakemake.log[0])
write_simulated(
    simulation=Simulation(snakemake.params.structure, snakemake.params.column),
    # Labelled splits: a simulated supervisor, like a ground-truth model, is made from true labels.
    split_paths={s: snakemake.input[s] for s in ("train_w2s", "test")},
    like_path=snakemake.input.like,
    seed=int(snakemake.wildcards.seed),
    n_slices=snakemake.params.n_slices,
    out_path=snakemake.output[0],
    strong_path=snakemake.input.get("strong"),
)
