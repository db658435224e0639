from crewai import Agent, Crew, Process, Task
from crewai.project import CrewBase, agent, crew, task
from crewai_tools import FileReadTool, FileWriterTool, ScrapeWebsiteTool

facts = FileReadTool(file_path="knowledge/facts.txt")


@CrewBase
class FileCrew:
    @agent
    def librarian(self) -> Agent:
        return Agent(config=self.agents_config["librarian"],
                     tools=[facts, FileWriterTool(base_dir="/tmp"), ScrapeWebsiteTool()])

    @task
    def read_task(self) -> Task:
        return Task(config=self.tasks_config["read_task"], agent=self.librarian())

    @task
    def save_task(self) -> Task:
        return Task(config=self.tasks_config["save_task"], agent=self.librarian())

    @crew
    def crew(self) -> Crew:
        return Crew(agents=self.agents, tasks=self.tasks, process=Process.sequential)
