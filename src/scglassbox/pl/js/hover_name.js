// CustomJSHover formatter: the name of a code (group or top feature), as text.
return names[value] === undefined ? '' : names[value];
