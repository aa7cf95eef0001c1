"""The mathematics, importing nothing of the project: the dataset and its split, the activation
table, the fast batched forwards, losses and metrics, the batched optimizer steps, parameter counts."""
