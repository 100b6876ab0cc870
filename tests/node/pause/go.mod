module zoey.local/pause

go 1.26
