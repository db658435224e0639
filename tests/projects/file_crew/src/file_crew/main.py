from file_crew.crew import FileCrew


def run():
    inputs = {"topic": "owls"}
    FileCrew().crew().kickoff(inputs=inputs)
