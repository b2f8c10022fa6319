"""The dress rehearsal's parts (w2s.pipeline.rehearse): hub-layout fixtures of every catalogue dataset, miniature
models of every model kind in a fake hub cache, and the selection of one job per job signature."""
