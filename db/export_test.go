package db

// MonthsFor exposes monthsFor to the db_test package's table test.
var MonthsFor = monthsFor
