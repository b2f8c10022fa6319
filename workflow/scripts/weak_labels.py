from w2s.data.splits import W2sSlice
from w2s.data.weak_labels import write_weak_labels
from w2s.runlog import log_to

log_to(snakemake.log[0])
write_weak_labels(
    predictions_path=snakemake.input.predictions,
    train_w2s_path=snakemake.input.train_w2s,
    labelled=W2sSlice(snakemake.params.slice_index, snakemake.params.n_slices),
    out_path=snakemake.output[0],
)
