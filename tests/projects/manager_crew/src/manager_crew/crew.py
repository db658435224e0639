from crewai import Agent, Crew, Process, Task
from crewai.project import CrewBase, agent, crew, task


@CrewBase
class ManagerCrew:
    @agent
    def planner(self) -> Agent:
        return Agent(config=self.agents_config["planner"])

    @agent
    def writer(self) -> Agent:
        return Agent(config=self.agents_config["writer"])

    @task
    def goals(self) -> Task:
        return Task(config=self.tasks_config["goals"])

    @task
    def announcement(self) -> Task:
        return Task(config=self.tasks_config["announcement"])

    @crew
    def crew(self) -> Crew:
        manager = Agent(role="Launch Manager", goal="Get {product} launched well",
                        backstory="Delegates and checks.", llm="kasal-offline/default",
                        allow_delegation=True)
        return Crew(agents=self.agents, tasks=self.tasks, process=Process.hierarchical,
                    manager_agent=manager)
