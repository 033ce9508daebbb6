"""The model and how it is trained, chosen and searched: losses, schemes, runs, ensembles, tune."""
