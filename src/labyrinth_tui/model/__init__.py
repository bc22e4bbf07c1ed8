"""Pure data and pure logic: topology, packets, journeys, progress. Imports nothing else of the package."""
