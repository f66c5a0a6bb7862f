# the report rollup learns of every ticket write (service/tickets/changes.py registers on import)
from service.tickets import changes as changes
