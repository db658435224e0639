#!/usr/bin/env python
from datetime import datetime

from bound_in_code.crew import BoundInCode


def run():
    inputs = {
        "topic": "owls",
        "year": str(datetime.now().year),
    }
    BoundInCode().crew().kickoff(inputs=inputs)
