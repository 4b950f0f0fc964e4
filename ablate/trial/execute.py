from ablate.trial.train import train_trial as execute_trial  # noqa: F401  (old name, removed once callers move)
