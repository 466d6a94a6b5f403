DROP TABLE changed_days;
