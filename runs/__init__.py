"""The runs ps-sync keeps in Temporal, as seen from outside them: each workflow's type name, business-key
id and messages (input, signals, updates, results), and the one module that starts and signals them.

Everything that starts or talks to a run (ingress, CLI, activities that start runs, the local stack) uses
this package, never the workflow code, so imports run one way: workflows -> activities -> runs.
"""
