from crewai import Agent, Crew, Process, Task
from crewai.project import CrewBase, agent, crew, task

from own_tools_crew.tools.text_tools import WordReverser, letter_counter


@CrewBase
class OwnToolsCrew:
    @agent
    def wordsmith(self) -> Agent:
        return Agent(config=self.agents_config["wordsmith"],
                     tools=[WordReverser(suffix="?!"), letter_counter])

    @task
    def reverse_task(self) -> Task:
        return Task(config=self.tasks_config["reverse_task"], agent=self.wordsmith())

    @task
    def count_task(self) -> Task:
        return Task(config=self.tasks_config["count_task"], agent=self.wordsmith())

    @crew
    def crew(self) -> Crew:
        return Crew(agents=self.agents, tasks=self.tasks, process=Process.sequential)
