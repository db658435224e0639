from own_tools_crew.crew import OwnToolsCrew


def run():
    inputs = {"word": "kasal"}
    OwnToolsCrew().crew().kickoff(inputs=inputs)
