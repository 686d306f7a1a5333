"""kdcore's public API: what a library user calls, each name resolvable, no internals."""

import kdcore


def test_every_public_name_resolves():
    for name in kdcore.__all__:
        assert getattr(kdcore, name) is not None, name


def test_explanation_metrics_are_public():
    from kdcore.explain_metrics import agreement, faithfulness

    assert kdcore.agreement is agreement and kdcore.faithfulness is faithfulness
    assert callable(kdcore.evaluate_explanations)


def test_internals_are_not_exported():
    for internal in ("Featurizer", "LOSSES", "split_words", "augment_texts", "BuildState"):
        assert internal not in kdcore.__all__
