"""The teacher: any Hugging Face classifier, loaded, run in windowed cached batches and fine-tuned, in
three rooms: :mod:`~kdcore.teacher.model` (loading, label names, fingerprint, saving),
:mod:`~kdcore.teacher.inference` (windows, batches, cache) and :mod:`~kdcore.teacher.finetune` (the one
fine-tuning loop). The token task's teacher (:class:`kdcore.tasks.token.teacher.TokenTeacher`) is a
subclass that reads one row per word."""

from .model import (EMBEDDED_TEACHER, Teacher, TeacherError, embedded_encoder_dir, head_task, load_tokenizer,
                    resolve_source)

__all__ = ["Teacher", "TeacherError", "embedded_encoder_dir", "head_task", "EMBEDDED_TEACHER", "load_tokenizer",
           "resolve_source"]
