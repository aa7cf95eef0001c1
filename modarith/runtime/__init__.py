"""Training and storing runs: devices, one vectorised group, the loop, checkpoints, the runner,
worker processes, ``engine.train``, its plan, cluster jobs and the results store."""
