"""Guarded rollouts: a version ramped through traffic steps, promoted or rolled back on evidence."""
