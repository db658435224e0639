from crewai import Agent, Crew, Process, Task
from crewai.project import CrewBase, agent, before_kickoff, crew, task
from pydantic import BaseModel

from bound_in_code.tools.word_count import WordCountTool


class Summary(BaseModel):
    title: str
    points: list[str]


@CrewBase
class BoundInCode:
    """Tasks are bound to agents here, not in tasks.yaml."""

    @before_kickoff
    def prepare(self, inputs):
        return inputs

    @agent
    def researcher(self) -> Agent:
        return Agent(config=self.agents_config["researcher"], tools=[WordCountTool()],
                     max_rpm=10, verbose=True)

    @agent
    def writer(self) -> Agent:
        return Agent(config=self.agents_config["writer"], llm="kasal-offline/default")

    @task
    def research_task(self) -> Task:
        return Task(config=self.tasks_config["research_task"], agent=self.researcher())

    @task
    def summary_task(self) -> Task:
        return Task(config=self.tasks_config["summary_task"], agent=self.writer(),
                    context=[self.research_task()], output_pydantic=Summary,
                    output_file="summary.md")

    @crew
    def crew(self) -> Crew:
        return Crew(agents=self.agents, tasks=self.tasks, process=Process.sequential,
                    planning=True, verbose=True)
