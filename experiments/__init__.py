"""Research scripts reproducing the textbook's results with jaxnets (see experiments/README.md).

Run one with `python -m experiments.e01_first_network [--quick] [--out DIR]`, all with
`python -m experiments.run_all [--quick]`.
"""
