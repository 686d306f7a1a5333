"""Readable students: a linear model and a small MLP over words and word pairs.

Both students share one featurizer (:mod:`.featurize`): the words of
:func:`kdcore.words.split_words` and adjacent word pairs, with a vocabulary built from the
transfer set. A text becomes a *bag* of (feature id, value) pairs fed to
``nn.EmbeddingBag(mode="sum", per_sample_weights=values)``, so the linear student is an exact
sparse linear model ``logits = W . phi(x) + b`` on any device.

Rooms: ``featurize`` (words -> bags), ``base`` (what every student shares: predict, save/load),
``gradients`` (the one gradient x input over feature values), ``linear`` and ``mlp`` (the
models; ``aug_linear`` the linear student whose n-gram scores also read the teacher's view of
each n-gram), ``train`` (fit: the L-BFGS and Adam trainers in ``train_lbfgs`` / ``train_adam``, over
the ``targets`` they learn from and the ``tables`` they batch with), ``registry`` (the one
kind -> class table); ``window`` and ``token``: the token students (one word in its window); ``token_crf`` the
linear-chain CRF token student over the same window features and the teacher's reading of each word
(``token_teacher_features``), fitted a sentence at a time.
"""

from .aug_linear import AugLinearStudent
from .base import Student
from .featurize import FeatureBatch, Featurizer
from .gradients import feature_gradient_x_input
from .linear import LinearStudent
from .mlp import MLPStudent
from .registry import SENTENCE_STUDENT_CLASSES, STUDENT_CLASSES, WEIGHT_TABLE_KINDS, load_student, make_student
from .targets import ConvergenceWarning
from .token import TokenLinearStudent, TokenMLPStudent
from .token_crf import TokenCRFStudent
from .window import WindowFeaturizer

__all__ = [
    "SENTENCE_STUDENT_CLASSES",
    "STUDENT_CLASSES",
    "WEIGHT_TABLE_KINDS",
    "AugLinearStudent",
    "ConvergenceWarning",
    "FeatureBatch",
    "Featurizer",
    "LinearStudent",
    "MLPStudent",
    "Student",
    "TokenCRFStudent",
    "TokenLinearStudent",
    "TokenMLPStudent",
    "WindowFeaturizer",
    "feature_gradient_x_input",
    "load_student",
    "make_student",
]
