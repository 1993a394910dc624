"""shoal: a Python client of the shoal vector database (doc/python.md).

    import numpy as np, shoal
    with shoal.Client("127.0.0.1:7482,127.0.0.1:7492") as c:
        c.create_collection("docs", dim=4, metric="cosine")
        c.upsert("docs", [1, 2], np.eye(2, 4), [{"tag": "a"}, {"tag": "b"}])
        for hit in c.search("docs", [1, 0, 0, 0], k=1, consistency="strong"):
            print(hit.id, hit.distance, hit.payload)
"""

from .client import Client, Hit, Point
from .errors import (AlreadyExists, DeadlineExceeded, FailedPrecondition, Internal,
                     InvalidArgument, NotFound, OutcomeUnknown, PermissionDenied,
                     ResourceExhausted, SessionExpired, ShoalError, Unauthenticated,
                     Unavailable)

__all__ = [
    "Client", "Hit", "Point", "ShoalError", "InvalidArgument", "NotFound", "AlreadyExists",
    "FailedPrecondition", "Unavailable", "DeadlineExceeded", "ResourceExhausted",
    "Unauthenticated", "Internal", "OutcomeUnknown", "PermissionDenied", "SessionExpired",
]
