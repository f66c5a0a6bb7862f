"""五违四必 key points (库内重点点位): the street's list of places to clear, their tickets and photos, and the 违建
ledger against the year's demolition target."""
