from knowledge_crew.crew import KnowledgeCrew


def run():
    inputs = {"user": "Ada"}
    KnowledgeCrew().crew().kickoff(inputs=inputs)
