"""Baselines AE is compared against: schedules, LR-free and hypergradient optimizers, PBT, ES."""
