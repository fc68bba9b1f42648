"""Cold start: recommending to a person (or for a film) that is not in the training data.

The package's modules sit in different layers of the import graph (``tests/test_layers.py`` names each), so
this file imports none of them; import from the module itself:

* :mod:`gnnrec.coldstart.fold_in` (data layer): the :class:`~gnnrec.coldstart.fold_in.FoldIn` result every
  model's ``fold_in`` returns, its reasons, the checks of a new person's ratings and the ridge fold-in;
* :mod:`gnnrec.coldstart.protocol` (data layer): seeded draws of held-out users or movies, their support and
  query ratings per support size, and the validation cold nodes that references are tuned on;
* :mod:`gnnrec.coldstart.evaluation` (evaluation layer): metrics of a fold-in on a draw's query ratings and
  the choice of fold-in settings on validation cold nodes;
* :mod:`gnnrec.coldstart.references` (models layer): what a practitioner would otherwise use (movie and group
  means, liked-film and demographic popularity, item-kNN and EASE fold-in and their blends with popularity).
"""
