"""Sequence classification (one label a text): the task (task.py) and what differs for it: reading and
checking a corpus (corpus.py), the transfer set and teacher outputs (transfer.py), training a student
(fit.py), evaluation (evaluate.py) and the CLI's specs (specs.py)."""
