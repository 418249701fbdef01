// A room's settings page: suggests usernames for the invite field (suggest.js). The page
// works without it: the forms are plain forms.
import { suggestUsernames } from "./suggest.js";

const input = document.getElementById("invite-username");
if (input) suggestUsernames(input);
