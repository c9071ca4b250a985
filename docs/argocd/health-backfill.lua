-- Argo CD health of a horolog Backfill (horolog.dev/v1alpha1), by its phase.
local hs = { status = "Progressing", message = "Waiting for the operator" }
local status = obj.status
if status == nil or status.phase == nil then return hs end
local phase = status.phase
if phase == "Complete" then
  hs.status = "Healthy"
elseif phase == "Failed" then
  hs.status = "Degraded"
else
  hs.status = "Progressing"
end
hs.message = phase .. ": " .. (status.message or "")
return hs
