"""The model engine: the only package that imports torch and transformers.

Import `higgs_cli.engine.request` freely (no torch); `higgs_cli.engine.session`
pulls in torch and transformers, so import it only where a model is needed.
"""

import os

# Large CPU tensors (the weights) in transparent huge pages: a decode step streams
# every weight once, and with 4 KB pages it ran about 1.5x slower (page walks
# stall the prefetchers, worst under virtualization). torch reads this once, when
# it starts, so it must be set before torch is imported. THP_MEM_ALLOC_ENABLE=0
# turns it off.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
