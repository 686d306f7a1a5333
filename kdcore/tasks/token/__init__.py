"""Token classification (one BIO tag a word): the task (task.py) and what differs for it: tagged sentences
(data.py, bio.py), the token teacher (teacher.py), the transfer set and students (fit.py), evaluation
(evaluate.py, metrics.py), explanations (explain.py, analysis.py), the report (report.py) and the CLI's
specs (specs.py)."""
